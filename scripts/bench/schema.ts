/**
 * Benchmark of schemas: a validated JSON POST (`{ name, qty }` → 201 with the item, through its
 * response schema) and a JSON response serialized through its schema, typhoon beside Fastify
 * with the same TypeBox schemas (`peers/schema-serve.ts`), measured in interleaved rounds by the
 * harness, and typhoon's schema serializer beside its own `JSON.stringify` path on the same
 * document. Each row carries server CPU µs per request: on this shared machine the per-CPU-second
 * ratio (Fastify's µs ÷ typhoon's) is the steadier figure.
 *
 *   node --import tsx scripts/bench/schema.ts          # alone: prints its rows
 *   make bench                                         # within the suite (`BENCH_ONLY=schema`)
 */
import { fileURLToPath } from "node:url";
import { median, measure, type LoadOptions, type Row, type Target } from "./harness.ts";
import { compileHandlerSchema } from "../../core/web/schema.ts";
import { POST_BODY, REPORT, REPORT_PLAIN, Report } from "./peers/schema-serve.ts";

/** A server below this share of its core was not the bottleneck (as in the suite). */
const SATURATED = 0.85;

const POST = { method: "POST", headers: { "content-type": "application/json" }, body: POST_BODY };

const TARGETS: readonly Target[] = [
  { key: "typhoon POST /items", server: { label: "typhoon", peer: "schema-typhoon", scenario: "schema" }, path: "/items", request: POST },
  { key: "fastify POST /items", server: { label: "fastify", peer: "schema-fastify", scenario: "schema" }, path: "/items", request: POST },
  { key: "typhoon GET /report", server: { label: "typhoon", peer: "schema-typhoon", scenario: "schema" }, path: "/report" },
  { key: "fastify GET /report", server: { label: "fastify", peer: "schema-fastify", scenario: "schema" }, path: "/report" },
  { key: "typhoon GET /report-plain", server: { label: "typhoon", peer: "schema-typhoon", scenario: "schema" }, path: "/report-plain" },
];

/** Options of the schema rows; `only` skips them unless it is a substring of `schema`. */
export interface SchemaBenchOptions extends LoadOptions {
  readonly only?: string | undefined;
}

/** Measures the two scenarios and returns their rows (none when `only` excludes them). */
export async function runSchemaBench(options: SchemaBenchOptions, say: (line: string) => void = () => {}): Promise<Row[]> {
  if (options.only !== undefined && !"schema validation and serialization".includes(options.only)) return [];
  say(`schema validation and serialization: ${TARGETS.map((t) => t.key).join(", ")}`);
  const samples = await measure(TARGETS, options, say);
  const stat = (key: string): { rps: number; cpu: number; cpuUs: number } => {
    const s = samples.get(key)!;
    return { rps: median(s.rps), cpu: median(s.cpu), cpuUs: median(s.cpuUs) };
  };
  const row = (name: string, typhoonKey: string, peerKey: string, peerName: string): Row => {
    const t = stat(typhoonKey);
    const p = stat(peerKey);
    const notes = [[typhoonKey, t], [peerKey, p]] as const;
    const low = notes.flatMap(([key, s]) => s.cpu < SATURATED ? [`${key} server at ${Math.round(s.cpu * 100)}% of its core`] : []);
    return {
      name, unit: "req/s", typhoon: Math.round(t.rps), peer: Math.round(p.rps), peerName,
      ratio: t.rps / p.rps, higherIsBetter: true, target: 1,
      ...(low.length === 0 ? {} : { note: low.join("; ") }),
      ...(Number.isFinite(t.cpuUs) && Number.isFinite(p.cpuUs) ? { typhoonCpuUs: round1(t.cpuUs), peerCpuUs: round1(p.cpuUs) } : {}),
    };
  };
  return [
    serializeRow(),
    row("validated JSON POST { name, qty }", "typhoon POST /items", "fastify POST /items", "Fastify, same schemas"),
    row("JSON response through its schema", "typhoon GET /report", "fastify GET /report", "Fastify, same schemas"),
    row("JSON response through its schema", "typhoon GET /report", "typhoon GET /report-plain", "typhoon, JSON.stringify"),
  ];
}

/**
 * The serializer alone, in this process: typhoon's compiled response serializer for `/report`
 * beside `JSON.stringify` of the same document, best of 15 batches (interference only adds time,
 * so the minimum is the steadiest figure on a busy machine).
 */
function serializeRow(): Row {
  const serialize = compileHandlerSchema({ name: "ReportHandler", schema: { get: { response: { 200: Report } } } })!.serializer("GET", 200)!;
  if (serialize(REPORT) !== JSON.stringify(REPORT_PLAIN)) throw new Error("the serializer and JSON.stringify disagree");
  const best = (fn: () => string): number => {
    let min = Infinity;
    for (let batch = 0; batch < 15; batch++) {
      const n = 20_000;
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) fn();
      min = Math.min(min, Number(process.hrtime.bigint() - start) / n);
    }
    return min;
  };
  const typhoon = best(() => serialize(REPORT));
  const peer = best(() => JSON.stringify(REPORT_PLAIN));
  return {
    name: "serialize the /report document (in-process)", unit: "ns", typhoon: Math.round(typhoon), peer: Math.round(peer),
    peerName: "JSON.stringify", ratio: typhoon / peer, higherIsBetter: false, target: 1,
  };
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const seconds = Number(process.env["BENCH_DURATION"] ?? 5);
  const rounds = Number(process.env["BENCH_ROUNDS"] ?? 3);
  const rows = await runSchemaBench({ seconds, rounds, connections: 64, warmupSeconds: Math.min(2, seconds) }, (l) => console.log(l));
  for (const r of rows) {
    if (r.unit === "ns") {
      console.log(`${r.name}: typhoon ${r.typhoon} ns, ${r.peerName} ${r.peer} ns, ratio ${r.ratio.toFixed(2)} (lower is better)`);
      continue;
    }
    const perCpu = r.typhoonCpuUs !== undefined && r.peerCpuUs !== undefined ? (r.peerCpuUs / r.typhoonCpuUs).toFixed(2) : "?";
    console.log(`${r.name}: typhoon ${r.typhoon} req/s, ${r.peerName} ${r.peer} req/s, ratio ${r.ratio.toFixed(2)}; `
      + `CPU µs/req ${r.typhoonCpuUs} vs ${r.peerCpuUs} → per CPU-second ${perCpu}×${r.note === undefined ? "" : ` (${r.note})`}`);
  }
}
