/**
 * How suite results are written down: the terminal table, the Markdown table the README includes,
 * and the JSON record. Every row shows typhoon, the peer measured in the same run, and the ratio.
 * HTTP rows lead with requests per server CPU-second (unit `req/CPU-s`), req/s beside them.
 */
import { availableParallelism, cpus } from "node:os";
import type { Row } from "./harness.ts";

/** Where and how a run was measured: printed under every table and chart. */
export interface RunInfo {
  /** ISO 8601 time the run finished. */
  readonly date: string;
  readonly cpu: string;
  readonly cores: number;
  readonly node: string;
  /** Whether server and load generator were pinned to different cores. */
  readonly pinned: boolean;
  /** Whether typhoon and its peer were loaded at the same time (`paired`) or one after the other. */
  readonly method?: "paired" | "sequential";
  readonly seconds: number;
  readonly rounds: number;
  readonly connections: number;
  readonly loadGenerator: string;
  /**
   * The machine's 1-minute load average when the run started and ended. Above the core count,
   * neighbours were taking CPU from the server and the load generator: trust ratios, not figures.
   */
  readonly loadAverage?: readonly [number, number];
}

/** The results file: the run and its rows. */
export interface Results {
  readonly run: RunInfo;
  readonly rows: readonly Row[];
}

/** This machine's description for {@link RunInfo}. */
export function machineInfo(): Pick<RunInfo, "cpu" | "cores" | "node"> {
  return { cpu: cpus()[0]?.model.trim() ?? "unknown CPU", cores: availableParallelism(), node: process.version };
}

/** Whether a row meets its target; `undefined` when it has none. */
export function meetsTarget(row: Row): boolean | undefined {
  if (row.target === undefined) return undefined;
  return row.higherIsBetter ? row.ratio >= row.target : row.ratio <= row.target;
}

function verdict(row: Row): string {
  const met = meetsTarget(row);
  if (met === undefined) return "";
  return `${met ? "met" : "MISSED"} (target ${row.higherIsBetter ? "≥" : "≤"} ${row.target!.toFixed(2)}×)`;
}

/** A figure with thousands separators (`61,234`), or with two decimals below 100. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) < 100 && !Number.isInteger(value)) return value.toFixed(2);
  return Math.round(value).toLocaleString("en-US");
}

/** A ratio as `0.95×`, or `n/a` when it is not a finite number (a peer that answered nothing). */
export function formatRatio(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "n/a";
}

/** One line describing the run: date, machine, method. */
export function describeRun(run: RunInfo): string {
  return `${run.date.slice(0, 16).replace("T", " ")} UTC · ${run.cpu} · ${run.cores} cores · Node ${run.node} · `
    + `${run.loadGenerator}, ${run.connections} connections, ${run.rounds} × ${run.seconds} s per figure (median)`
    + `${run.method === "paired" ? " · typhoon and its peer loaded at the same time" : run.method === "sequential" ? " · one server at a time" : ""}`
    + `${run.pinned ? ` · server${run.method === "paired" ? "s" : ""} on core 0, load on core 1` : " · not pinned"}`
    + `${run.loadAverage === undefined ? "" : ` · load average ${run.loadAverage[0].toFixed(1)} → ${run.loadAverage[1].toFixed(1)}`}`;
}

/** The throughput ratio implied by server CPU per request (peer ÷ typhoon), or `""` without CPU figures. */
export function cpuRatio(row: Row): string {
  if (row.typhoonCpuUs === undefined || row.peerCpuUs === undefined || row.typhoonCpuUs <= 0) return "";
  return formatRatio(row.peerCpuUs / row.typhoonCpuUs);
}

function cpuCell(row: Row): string {
  return row.typhoonCpuUs === undefined || row.peerCpuUs === undefined ? "" : `${row.typhoonCpuUs} / ${row.peerCpuUs}`;
}

/** Requests per second of typhoon and the peer, for rows whose own figures are per CPU-second. */
function rpsCell(row: Row): string {
  return row.typhoonRps === undefined || row.peerRps === undefined ? "" : `${formatNumber(row.typhoonRps)} / ${formatNumber(row.peerRps)}`;
}

/** The throughput ratio in req/s (typhoon ÷ peer), or `""` without req/s figures. */
export function rpsRatio(row: Row): string {
  if (row.typhoonRps === undefined || row.peerRps === undefined || row.peerRps <= 0) return "";
  return formatRatio(row.typhoonRps / row.peerRps);
}

/** The table for the terminal: aligned columns, one row per comparison, notes below. */
export function textTable(results: Results): string {
  const header = ["benchmark", "typhoon", "peer", "peer figure", "ratio", "target", "µs cpu/req (t / p)", "ratio by cpu",
    "req/s (t / p)", "ratio by req/s"];
  const body = results.rows.map((r) => [r.name, `${formatNumber(r.typhoon)} ${r.unit}`, r.peerName,
    `${formatNumber(r.peer)} ${r.unit}`, formatRatio(r.ratio), verdict(r), cpuCell(r), cpuRatio(r), rpsCell(r), rpsRatio(r)]);
  const right = new Set([1, 3, 4, 6, 7, 8, 9]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const notes = results.rows.flatMap((r) => (r.note === undefined ? [] : [`  ${r.name} vs ${r.peerName}: ${r.note}`]));
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line), "",
    describeRun(results.run), ...(notes.length > 0 ? ["notes:", ...notes] : [])].join("\n");
}

function cell(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

/** The Markdown table the README includes (`bench-results/latest.md`). */
export function markdownTable(results: Results): string {
  const lines = [
    "| benchmark | typhoon | peer | peer figure | ratio | target | µs CPU/req (typhoon / peer) | ratio by CPU | req/s (typhoon / peer) | ratio by req/s |",
    "| --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ...results.rows.map((r) => `| ${cell(r.name)} | ${formatNumber(r.typhoon)} ${cell(r.unit)} | ${cell(r.peerName)} | `
      + `${formatNumber(r.peer)} ${cell(r.unit)} | ${formatRatio(r.ratio)} | ${cell(verdict(r))} | ${cpuCell(r)} | ${cpuRatio(r)} | `
      + `${rpsCell(r)} | ${rpsRatio(r)} |`),
    "",
    `<sub>${cell(describeRun(results.run))}. Ratio: typhoon ÷ peer in the row's unit (HTTP rows: the median of the rounds' ratios); req/CPU-s is requests served ÷ the `
      + `server process's user + system CPU seconds, which moves far less than req/s when neighbours share the machine. `
      + `Ratio by CPU: peer ÷ typhoon in server CPU time per request. Ratio by req/s: typhoon ÷ peer in requests per second.</sub>`,
  ];
  const notes = results.rows.filter((r) => r.note !== undefined);
  if (notes.length > 0) {
    lines.push("", ...notes.map((r) => `- ${cell(r.name)} vs ${cell(r.peerName)}: ${cell(r.note!)}`));
  }
  return `${lines.join("\n")}\n`;
}

/** The JSON record (`bench-results/latest.json`). */
export function resultsJson(results: Results): string {
  return `${JSON.stringify(results, null, 2)}\n`;
}
