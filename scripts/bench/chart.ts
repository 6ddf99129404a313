/**
 * The benchmark chart (`bench-results/latest.svg`): one horizontal bar per row, its length
 * typhoon's ratio to the peer measured in the same run, a line at parity (1×) and a tick at the
 * row's target. Plain SVG with no scripts or external fonts, so GitHub renders it in the README.
 */
import { describeRun, formatNumber, formatRatio, meetsTarget, type Results } from "./report.ts";

const WIDTH = 960;
const LABEL = 360;
const BAR = 470;
const ROW = 28;
const TOP = 78;
const COLORS = { met: "#2e7d32", missed: "#c62828", plain: "#1565c0" } as const;

/** Escapes text for SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/**
 * Draws the results as an SVG document.
 *
 * @example
 * writeFileSync("bench-results/latest.svg", barChart({ run, rows }));
 */
export function barChart(results: Results): string {
  const { rows, run } = results;
  const finite = rows.map((r) => (Number.isFinite(r.ratio) && r.ratio > 0 ? r.ratio : 0));
  // The scale always shows parity and every target, with headroom past the longest bar.
  const scaleMax = Math.max(1.2, ...finite.map((r) => r * 1.08), ...rows.map((r) => (r.target ?? 0) * 1.08));
  const x = (ratio: number): number => LABEL + (Math.min(ratio, scaleMax) / scaleMax) * BAR;
  const height = TOP + rows.length * ROW + 56;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" `
      + `font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="28" font-size="18" font-weight="bold">typhoon vs peers, measured in the same run (ratio, higher is better unless marked)</text>`,
    `<text x="16" y="50" font-size="11" fill="#555">${escapeXml(describeRun(run))}</text>`,
  ];
  // Grid every 0.25×, labelled every 0.5×.
  for (let g = 0; g <= scaleMax + 1e-9; g += 0.25) {
    const gx = x(g).toFixed(1);
    out.push(`<line x1="${gx}" y1="${TOP - 8}" x2="${gx}" y2="${TOP + rows.length * ROW}" stroke="${g === 1 ? "#333" : "#e0e0e0"}" `
      + `stroke-width="${g === 1 ? 1.5 : 1}"${g === 1 ? ' stroke-dasharray="4 3"' : ""}/>`);
    if (Math.abs(g * 2 - Math.round(g * 2)) < 1e-9) {
      out.push(`<text x="${gx}" y="${TOP + rows.length * ROW + 16}" text-anchor="middle" font-size="11" fill="#555">${g.toFixed(1)}×</text>`);
    }
  }
  rows.forEach((r, i) => {
    const y = TOP + i * ROW;
    const met = meetsTarget(r);
    const color = met === undefined ? COLORS.plain : met ? COLORS.met : COLORS.missed;
    const label = `${r.name} vs ${r.peerName}${r.higherIsBetter ? "" : " (lower is better)"}`;
    const ratio = finite[i]!;
    out.push(`<text x="${LABEL - 8}" y="${y + 18}" text-anchor="end">${escapeXml(truncate(label, 52))}</text>`);
    out.push(`<rect x="${LABEL}" y="${y + 5}" width="${(x(ratio) - LABEL).toFixed(1)}" height="${ROW - 10}" fill="${color}">`
      + `<title>${escapeXml(`${label}: ${formatNumber(r.typhoon)} vs ${formatNumber(r.peer)} ${r.unit}`)}</title></rect>`);
    if (r.target !== undefined) {
      const tx = x(r.target).toFixed(1);
      out.push(`<line x1="${tx}" y1="${y + 2}" x2="${tx}" y2="${y + ROW - 2}" stroke="#000" stroke-width="2"/>`);
    }
    out.push(`<text x="${(x(ratio) + 6).toFixed(1)}" y="${y + 18}" font-size="12">${escapeXml(formatRatio(r.ratio))}</text>`);
  });
  const legendY = TOP + rows.length * ROW + 40;
  out.push(`<text x="16" y="${legendY}" font-size="11" fill="#555">dashed line: parity with the peer · black tick: target · `
    + `<tspan fill="${COLORS.met}">green: target met</tspan> · <tspan fill="${COLORS.missed}">red: target missed</tspan> · `
    + `<tspan fill="${COLORS.plain}">blue: no target</tspan></text>`);
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
