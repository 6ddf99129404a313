/**
 * Benchmark of the thread executor against piscina, measured in the same run on the same task
 * module: no-op throughput with 1,000 calls in flight, sequential round-trip latency, a 16 MiB
 * buffer round trip given to both pools as the same argument (a `Uint8Array` over a
 * `SharedArrayBuffer`, which both share; then an ordinary `Uint8Array`, which both copy each
 * way), and how two concurrent CPU-bound calls compare with one alone (parallelism).
 *
 * Run: `node --import tsx scripts/bench/executor.ts [--json <file>]`. Each figure is the median
 * of {@link TRIALS} trials that alternate between the two pools, so drift on a noisy machine hits
 * both alike. `runExecutorBench()` returns the rows for the bench suite.
 *
 * With `--experiment [N]` it runs the demo's executor mode instead (`runExecutorExperiment`): a
 * typhoon app serving `/` and `/tsleep/N` (the demo's `spin(N)` on the pool), the latency of `/`
 * while two `/tsleep/N` run, and the time of two concurrent `/tsleep/N` over one alone.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import http from "node:http";
import { Piscina } from "piscina";
import ts from "typescript";
import { Application, HTTPServer, RequestHandler } from "../../core/index.ts";
import { ThreadPoolExecutor } from "../../core/executor/pool.ts";

import type { Row } from "./harness.ts";

export type { Row };

const TRIALS = 3;
const IN_FLIGHT = 1_000;
const THROUGHPUT_CALLS = 20_000;
const SEQUENTIAL_CALLS = 2_000;
const BUFFER_BYTES = 16 * 1024 * 1024;
/** Round trips per trial: copying 16 MiB takes milliseconds, sharing it microseconds. */
const COPIED_TRIPS = 10;
const SHARED_TRIPS = 500;
/** Loop turns of one CPU-bound call: about 0.2 s of one core (two units of the demo's spin). */
const BURN_ITERATIONS = 44_000_000;
/** Interval between probes of `/` in the experiment (ms). */
const PROBE_MS = 20;

/** What both pools offer, reduced to the one call the benchmark makes. */
interface Runner {
  run(name: string, arg: unknown): Promise<unknown>;
  close(): Promise<void>;
}

/** Compiles the benchmark's task module to an `.mjs` both pools can load without tsx. */
function compileTasks(dir: string): string {
  const source = fileURLToPath(new URL("../../spec/fixtures/tasks-bench.ts", import.meta.url));
  const { outputText } = ts.transpileModule(readFileSync(source, "utf8"), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  const file = path.join(dir, "tasks-bench.mjs");
  writeFileSync(file, outputText);
  return file;
}

function typhoonRunner(file: string): Runner {
  const pool = new ThreadPoolExecutor({ module: pathToFileURL(file) });
  return { run: (name, arg) => pool.submit(name, arg), close: () => pool.shutdown() };
}

function piscinaRunner(file: string): Runner {
  // Not the parent's execArgv (tsx's loader): the task module is plain JavaScript, as for ours.
  const pool = new Piscina({ filename: pathToFileURL(file).href, execArgv: [] });
  return { run: (name, arg) => pool.run(arg, { name }), close: () => pool.destroy() };
}

async function throughput(pool: Runner): Promise<number> {
  const start = performance.now();
  for (let done = 0; done < THROUGHPUT_CALLS; done += IN_FLIGHT) {
    await Promise.all(Array.from({ length: IN_FLIGHT }, () => pool.run("noop", null)));
  }
  return THROUGHPUT_CALLS / ((performance.now() - start) / 1000);
}

async function roundTrip(pool: Runner): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < SEQUENTIAL_CALLS; i++) await pool.run("noop", null);
  return ((performance.now() - start) * 1000) / SEQUENTIAL_CALLS;
}

async function bufferTrip(pool: Runner, data: Uint8Array, trips: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < trips; i++) {
    const before = data[0] ?? 0;
    const back = (await pool.run("bump", data)) as Uint8Array;
    if (back.length !== data.length || back[0] !== ((before + 1) & 0xff)) throw new Error("buffer round trip lost the change");
    // piscina hands back a copy: carry on with it, as a caller would.
    if (back !== data) data.set(back.subarray(0, 1));
  }
  return (performance.now() - start) / trips;
}

async function parallelism(pool: Runner): Promise<number> {
  let start = performance.now();
  await pool.run("burn", BURN_ITERATIONS);
  const one = performance.now() - start;
  start = performance.now();
  await Promise.all([pool.run("burn", BURN_ITERATIONS), pool.run("burn", BURN_ITERATIONS)]);
  return (performance.now() - start) / one;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function measure(typhoon: Runner, peer: Runner, trial: (pool: Runner) => Promise<number>): Promise<[number, number]> {
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    ours.push(await trial(typhoon));
    theirs.push(await trial(peer));
  }
  return [median(ours), median(theirs)];
}

function row(name: string, unit: string, [typhoon, peer]: [number, number], higherIsBetter: boolean): Row {
  return { name, unit, typhoon, peer, peerName: "piscina", ratio: typhoon / peer, higherIsBetter };
}

/** Runs every comparison and returns its rows (typhoon beside piscina). */
export async function runExecutorBench(): Promise<Row[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "typhoon-bench-"));
  const file = compileTasks(dir);
  const typhoon = typhoonRunner(file);
  const peer = piscinaRunner(file);
  try {
    // Warm-up: start every thread of both pools and let the JIT settle.
    for (const pool of [typhoon, peer]) {
      await Promise.all(Array.from({ length: os.availableParallelism() * 2 }, () => pool.run("burn", 1_000_000)));
      for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: IN_FLIGHT }, () => pool.run("noop", null)));
    }
    const shared = new Uint8Array(new SharedArrayBuffer(BUFFER_BYTES));
    const copied = new Uint8Array(BUFFER_BYTES);
    // Warm-up of the buffer paths too: the first trips measure the JIT, not the pool.
    for (const pool of [typhoon, peer]) {
      await bufferTrip(pool, shared, SHARED_TRIPS);
      await bufferTrip(pool, copied, 2);
    }
    const rows = [
      row(`no-op throughput, ${IN_FLIGHT} in flight`, "calls/s", await measure(typhoon, peer, throughput), true),
      row("sequential round trip (no-op)", "µs", await measure(typhoon, peer, roundTrip), false),
      // Both pools get the very same argument in each row: a view of shared memory (which both
      // share rather than copy), then an ordinary array (which both must copy each way).
      row("16 MiB buffer round trip: Uint8Array over a SharedArrayBuffer", "ms", await measure(typhoon, peer, (pool) => bufferTrip(pool, shared, SHARED_TRIPS)), false),
      row("16 MiB buffer round trip: ordinary Uint8Array (copied)", "ms", await measure(typhoon, peer, (pool) => bufferTrip(pool, copied, COPIED_TRIPS)), false),
      row("two CPU-bound calls / one alone", "×", await measure(typhoon, peer, parallelism), false),
    ];
    return rows;
  } finally {
    await Promise.all([typhoon.close(), peer.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
}


/** What the executor mode of the experiment measured. */
export interface ExperimentResult {
  n: number;
  /** `/tsleep/N` alone, ms. */
  oneMs: number;
  /** Two concurrent `/tsleep/N`, ms until both answered. */
  twoMs: number;
  /** `twoMs / oneMs`: 1.0 is perfect parallelism, 2.0 is none. */
  ratio: number;
  /** `/` answered while the two ran: how many, median and worst latency in ms. */
  root: { count: number; medianMs: number; maxMs: number };
}

function get(port: number, path: string, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => { body += chunk; });
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${path}: ${res.statusCode}`))));
    }).on("error", reject);
  });
}

async function timed(work: Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work;
  return performance.now() - start;
}

/**
 * The demo's executor mode: serves `/` and `/tsleep/N` from one process, with `spin(N)` on a
 * `ThreadPoolExecutor`, and measures what a user of the demo would notice.
 */
export async function runExecutorExperiment(n = 5): Promise<ExperimentResult> {
  const pool = new ThreadPoolExecutor({ module: new URL("../tasks.ts", import.meta.url) });
  class MainHandler extends RequestHandler {
    get(): void { this.write("this is main"); }
  }
  class ThreadSleepHandler extends RequestHandler {
    async get(units: string): Promise<void> { this.write(`Awake! ${await pool.submit<number>("spin", Number(units))}`); }
  }
  const server = new HTTPServer(new Application([["/", MainHandler], ["/tsleep/(\\d+)", ThreadSleepHandler]], { accessLog: false }));
  await server.listen(0, "127.0.0.1");
  const port = server.address()!.port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  try {
    // Warm-up: both threads started, the JIT has seen the handlers.
    await Promise.all([get(port, "/tsleep/0", agent), get(port, "/tsleep/0", agent), get(port, "/", agent)]);
    const oneMs = await timed(get(port, `/tsleep/${n}`, agent));
    let running = true;
    const two = Promise.all([get(port, `/tsleep/${n}`, agent), get(port, `/tsleep/${n}`, agent)]).finally(() => { running = false; });
    const twoMs = timed(two);
    const latencies: number[] = [];
    // One probe every PROBE_MS, not back to back: the probe must not take a core from the threads.
    while (running) {
      latencies.push(await timed(get(port, "/", agent)));
      await new Promise((resolve) => setTimeout(resolve, PROBE_MS));
    }
    const sorted = latencies.sort((a, b) => a - b);
    return {
      n, oneMs, twoMs: await twoMs, ratio: (await twoMs) / oneMs,
      root: { count: sorted.length, medianMs: sorted[Math.floor(sorted.length / 2)] ?? NaN, maxMs: sorted.at(-1) ?? NaN },
    };
  } finally {
    agent.destroy();
    server.closeAllConnections();
    await server.stop();
    await pool.shutdown();
  }
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

async function main(): Promise<void> {
  const experimentAt = process.argv.indexOf("--experiment");
  if (experimentAt >= 0) {
    const r = await runExecutorExperiment(Number(process.argv[experimentAt + 1] ?? 5) || 5);
    console.log(`executor mode (/tsleep/${r.n} = spin(${r.n}) on a ThreadPoolExecutor, ${os.availableParallelism()} cores)`);
    console.log(`  / while two /tsleep/${r.n} run: ${r.root.count} requests, median ${r.root.medianMs.toFixed(1)} ms, max ${r.root.maxMs.toFixed(1)} ms`);
    console.log(`  two concurrent /tsleep/${r.n}: ${r.twoMs.toFixed(0)} ms; one alone: ${r.oneMs.toFixed(0)} ms; ratio ${r.ratio.toFixed(2)}x (1.00 = fully parallel, 2.00 = serial)`);
    return;
  }
  const rows = await runExecutorBench();
  console.log(`executor: typhoon vs piscina (${os.availableParallelism()} threads each, median of ${TRIALS})`);
  console.log(["case", "unit", "typhoon", "piscina", "ratio"].join("\t"));
  for (const r of rows) {
    const better = r.higherIsBetter ? r.ratio : 1 / r.ratio;
    console.log([r.name, r.unit, format(r.typhoon), format(r.peer), `${r.ratio.toFixed(2)} (${better >= 1 ? `${better.toFixed(2)}× better` : `${(1 / better).toFixed(2)}× worse`})`].join("\t"));
  }
  const jsonAt = process.argv.indexOf("--json");
  const jsonFile = jsonAt >= 0 ? process.argv[jsonAt + 1] : undefined;
  if (jsonFile !== undefined) writeFileSync(jsonFile, `${JSON.stringify(rows, null, 2)}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
