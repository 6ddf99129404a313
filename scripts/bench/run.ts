/**
 * `make bench`: runs the whole benchmark suite and prints one table, each row typhoon beside the
 * peer measured in the same run; writes `bench-results/latest.json`, `latest.md` and `latest.svg`.
 *
 *   node --import tsx scripts/bench/run.ts
 *   BENCH_DURATION=2 BENCH_ROUNDS=1 node --import tsx scripts/bench/run.ts   # a quick look
 *
 * Environment: `BENCH_DURATION` seconds per figure (default 5), `BENCH_ROUNDS` (default 3),
 * `BENCH_CONNECTIONS` (default 64), `BENCH_ONLY` (a group title substring, e.g. `hello`),
 * `BENCH_OUT` (results directory, default `bench-results/`; `-` writes nothing), `BENCH_METHOD`
 * (`paired`, the default: typhoon and its peer loaded at the same time; or `sequential`).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { canPin, methodFromEnvironment } from "./harness.ts";
import { runSuite } from "./suite.ts";
import { runSchemaBench } from "./schema.ts";
import { machineInfo, markdownTable, resultsJson, textTable, type Results } from "./report.ts";
import { barChart } from "./chart.ts";

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return value;
}

const seconds = envNumber("BENCH_DURATION", 5);
const rounds = Math.round(envNumber("BENCH_ROUNDS", 3));
const connections = Math.round(envNumber("BENCH_CONNECTIONS", 64));
const only = process.env["BENCH_ONLY"] || undefined;
const method = methodFromEnvironment();
const outDir = process.env["BENCH_OUT"] ?? fileURLToPath(new URL("../../bench-results/", import.meta.url));
const autocannonVersion = (createRequire(import.meta.url)("autocannon/package.json") as { version: string }).version;

if (!canPin()) console.warn("note: taskset is not available (or fewer than 2 cores): server and load generator are not pinned");
const started = Date.now();
const loadBefore = loadavg()[0]!;
const load = { seconds, rounds, connections, warmupSeconds: Math.min(2, seconds), method };
const rows = await runSuite({ ...load, ...(only === undefined ? {} : { only }), contributed: true }, (line) => console.log(line));
rows.push(...(await runSchemaBench({ ...load, only }, (line) => console.log(line))));
const results: Results = {
  run: {
    date: new Date().toISOString(), ...machineInfo(), pinned: canPin(), method, seconds, rounds, connections,
    loadGenerator: `autocannon ${autocannonVersion}`, loadAverage: [loadBefore, loadavg()[0]!],
  },
  rows,
};

console.log(`\n${textTable(results)}\n`);
console.log(`(${Math.round((Date.now() - started) / 1000)} s)`);
if (outDir !== "-") {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "latest.json"), resultsJson(results));
  writeFileSync(join(outDir, "latest.md"), markdownTable(results));
  writeFileSync(join(outDir, "latest.svg"), barChart(results));
  console.log(`results: ${join(outDir, "latest.json")}, latest.md, latest.svg`);
}
// A contributed benchmark that timed out may still hold handles (servers, threads): end here.
process.exit(0);
