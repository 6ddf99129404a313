/**
 * Benchmark of schemas: a validated JSON POST (`{ name, qty }` → 201 with the item, through its
 * response schema) and a JSON response serialized through its schema, typhoon beside Fastify
 * with the same TypeBox schemas (`peers/schema-serve.ts`), each pair loaded at the same time by
 * the harness, and typhoon's schema serializer beside its own `JSON.stringify` path on the same
 * document. Rows lead with requests per server CPU-second, req/s beside them.
 *
 *   node --import tsx scripts/bench/schema.ts          # alone: prints its rows
 *   make bench                                         # within the suite (`BENCH_ONLY=schema`)
 */
import { fileURLToPath } from "node:url";
import { measurePairs, methodFromEnvironment, pairRow, type LoadRequest, type PairOptions, type Row, type Target } from "./harness.ts";
import { compileHandlerSchema } from "../../core/web/schema.ts";
import { POST_BODY, REPORT, REPORT_PLAIN, Report } from "./peers/schema-serve.ts";

const POST = { method: "POST", headers: { "content-type": "application/json" }, body: POST_BODY };

/** `label`'s schema server (`peers/schema-<label>.ts`) loaded at `path`. */
function at(label: "typhoon" | "fastify", path: string, request?: LoadRequest): Target {
  return {
    key: `${label} ${request?.method ?? "GET"} ${path}`, server: { label, peer: `schema-${label}`, scenario: "schema" }, path,
    ...(request === undefined ? {} : { request }),
  };
}

/** Each row's pair: typhoon against Fastify with the same schemas, and the schema serializer against JSON.stringify. */
const PAIRS = [
  { name: "validated JSON POST { name, qty }", subject: at("typhoon", "/items", POST), peer: at("fastify", "/items", POST), peerName: "Fastify, same schemas", target: 1 },
  { name: "JSON response through its schema", subject: at("typhoon", "/report"), peer: at("fastify", "/report"), peerName: "Fastify, same schemas", target: 1 },
  { name: "JSON response through its schema", subject: at("typhoon", "/report"), peer: at("typhoon", "/report-plain"), peerName: "typhoon, JSON.stringify", target: 1 },
] as const;

/** Options of the schema rows; `only` skips them unless it is a substring of `schema`. */
export interface SchemaBenchOptions extends PairOptions {
  readonly only?: string | undefined;
}

/** Measures the two scenarios and returns their rows (none when `only` excludes them). */
export async function runSchemaBench(options: SchemaBenchOptions, say: (line: string) => void = () => {}): Promise<Row[]> {
  if (options.only !== undefined && !"schema validation and serialization".includes(options.only)) return [];
  say(`schema validation and serialization: ${PAIRS.map((p) => `${p.subject.key} vs ${p.peer.key}`).join(", ")} (${options.method})`);
  const results = await measurePairs(PAIRS, options, say);
  return [serializeRow(), ...PAIRS.map((p, i) => pairRow(results[i]!, options.method, p.name, p.peerName, { target: p.target }))];
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const seconds = Number(process.env["BENCH_DURATION"] ?? 5);
  const rounds = Number(process.env["BENCH_ROUNDS"] ?? 3);
  const rows = await runSchemaBench({ seconds, rounds, connections: 64, warmupSeconds: Math.min(2, seconds), method: methodFromEnvironment() }, (l) => console.log(l));
  for (const r of rows) {
    if (r.unit === "ns") {
      console.log(`${r.name}: typhoon ${r.typhoon} ns, ${r.peerName} ${r.peer} ns, ratio ${r.ratio.toFixed(2)} (lower is better)`);
      continue;
    }
    console.log(`${r.name}: typhoon ${r.typhoon} ${r.unit}, ${r.peerName} ${r.peer} ${r.unit}, ratio ${r.ratio.toFixed(2)}`
      + `${r.note === undefined ? "" : ` (${r.note})`}`);
  }
}
