/**
 * The benchmark chart (`bench-results/latest.svg`): one bar per row, drawn from parity (1×) on a
 * logarithmic axis, right when typhoon is ahead of the peer measured in the same run and left
 * when it is behind, with a tick at the row's target. Ratios run from 0.01× to 100× across the
 * suite (thread pools, routers, servers), so only a log axis keeps 0.9× and 35× both readable.
 * Plain SVG with no scripts or external fonts, so GitHub renders it in the README.
 */
import type { Row } from "./harness.ts";
import { describeRun, formatNumber, formatRatio, meetsTarget, type Results } from "./report.ts";

const WIDTH = 980;
const LABEL = 380;
const BAR = 470;
const ROW = 26;
const TOP = 92;
const LIMIT = 4;
const COLORS = { met: "#2e7d32", missed: "#c62828", plain: "#1565c0" } as const;

/** Escapes text for SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** How far ahead typhoon is: the ratio, inverted for rows where lower is better; `null` if not finite. */
export function advantage(row: Row): number | null {
  const a = row.higherIsBetter ? row.ratio : 1 / row.ratio;
  return Number.isFinite(a) && a > 0 ? a : null;
}

/**
 * Draws the results as an SVG document.
 *
 * @example
 * writeFileSync("bench-results/latest.svg", barChart({ run, rows }));
 */
export function barChart(results: Results): string {
  const { rows, run } = results;
  const advantages = rows.map(advantage);
  const spread = [...advantages, ...rows.map((r) => (r.target === undefined ? null : advantage({ ...r, ratio: r.target })))]
    .filter((a): a is number => a !== null);
  // The axis covers every bar and target in powers of two, at least 0.5× to 2×, at most 1/16× to 16×
  // (past that a bar is cut at the edge and marked: the figure is in its label).
  const lo = Math.max(-LIMIT, Math.min(-1, Math.floor(Math.log2(Math.min(...spread, 1)))));
  const hi = Math.min(LIMIT, Math.max(1, Math.ceil(Math.log2(Math.max(...spread, 1)))));
  const x = (a: number): number => LABEL + ((Math.min(hi, Math.max(lo, Math.log2(a))) - lo) / (hi - lo)) * BAR;
  const parity = x(1);
  const bottom = TOP + rows.length * ROW;
  const height = bottom + 58;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" `
      + `font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="28" font-size="18" font-weight="bold">typhoon vs the peer measured in the same run</text>`,
    `<text x="16" y="48" font-size="12" fill="#333">right of 1×: typhoon ahead; left: behind (log scale; HTTP rows: requests per server CPU-second; lower-is-better rows inverted)</text>`,
    `<text x="16" y="66" font-size="11" fill="#555">${escapeXml(describeRun(run))}</text>`,
  ];
  for (let p = lo; p <= hi; p++) {
    const gx = x(2 ** p).toFixed(1);
    out.push(`<line x1="${gx}" y1="${TOP - 8}" x2="${gx}" y2="${bottom}" stroke="${p === 0 ? "#333" : "#e0e0e0"}" `
      + `stroke-width="${p === 0 ? 1.5 : 1}"${p === 0 ? ' stroke-dasharray="4 3"' : ""}/>`);
    const label = p >= 0 ? `${2 ** p}×` : `1/${2 ** -p}×`;
    out.push(`<text x="${gx}" y="${bottom + 16}" text-anchor="middle" font-size="11" fill="#555">${label}</text>`);
  }
  rows.forEach((r, i) => {
    const y = TOP + i * ROW;
    const met = meetsTarget(r);
    const color = met === undefined ? COLORS.plain : met ? COLORS.met : COLORS.missed;
    const label = `${r.name} vs ${r.peerName}${r.higherIsBetter ? "" : " (lower is better)"}`;
    const a = advantages[i]!;
    const end = a === null ? parity : x(a);
    const left = Math.min(parity, end);
    out.push(`<text x="${LABEL - 8}" y="${y + 17}" text-anchor="end">${escapeXml(truncate(label, 54))}</text>`);
    out.push(`<rect x="${left.toFixed(1)}" y="${y + 5}" width="${Math.abs(end - parity).toFixed(1)}" height="${ROW - 10}" fill="${color}">`
      + `<title>${escapeXml(`${label}: ${formatNumber(r.typhoon)} vs ${formatNumber(r.peer)} ${r.unit}`)}</title></rect>`);
    if (a !== null && (Math.log2(a) > hi || Math.log2(a) < lo)) {
      const tip = a > 1 ? end + 7 : end - 7;
      out.push(`<path d="M${end.toFixed(1)} ${y + 3}L${tip.toFixed(1)} ${y + ROW / 2}L${end.toFixed(1)} ${y + ROW - 3}Z" fill="${color}"/>`);
    }
    if (r.target !== undefined) {
      const tx = x(advantage({ ...r, ratio: r.target }) ?? 1).toFixed(1);
      out.push(`<line x1="${tx}" y1="${y + 2}" x2="${tx}" y2="${y + ROW - 2}" stroke="#000" stroke-width="2"/>`);
    }
    const textX = a !== null && a < 1 ? parity + 6 : end + (a !== null && Math.log2(a) > hi ? 12 : 6);
    out.push(`<text x="${textX.toFixed(1)}" y="${y + 17}" font-size="12">${escapeXml(formatRatio(r.ratio))}</text>`);
  });
  out.push(`<text x="16" y="${bottom + 42}" font-size="11" fill="#555">dashed line: parity · black tick: target · `
    + `<tspan fill="${COLORS.met}">green: target met</tspan> · <tspan fill="${COLORS.missed}">red: target missed</tspan> · `
    + `<tspan fill="${COLORS.plain}">blue: no target</tspan> · figures and notes: latest.md</text>`);
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
