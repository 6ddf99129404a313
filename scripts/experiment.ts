/**
 * The seed's experiment, scripted (`make experiment`): in one terminal `curl /sleep/N`, in the
 * other `curl /` a few times while it runs. Printed for a single process and for `start(2)` under
 * each scheduling: the time of `/sleep/N` alone, and the latency of `/` requests, each on a new
 * connection, sent one after another while one `/sleep/N` runs (up to REQUESTS, or until the
 * sleep ends: in a single process the first `/` already waits for all of it).
 *
 *   node --import tsx scripts/experiment.ts     # SLEEP_N=3 REQUESTS=5 ROUNDS=3
 *
 * Expected: in a single process every `/` waits for the sleep; with `start(2)` and least-busy
 * scheduling every `/` answers in milliseconds; round-robin sends some `/` to the busy child.
 * The last mode is the executor's answer in one process: `/tsleep/N` runs the same work on a
 * worker thread, and `/` answers at once.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { freePort } from "./bench/harness.ts";

const self = fileURLToPath(import.meta.url);
const root = fileURLToPath(new URL("../", import.meta.url));

/** One way of serving the demo app. */
interface Mode {
  readonly label: string;
  readonly processes: number;
  readonly scheduling?: string;
  /** Where the CPU work is asked for: `/sleep/` (on the event loop, the default) or `/tsleep/` (on a worker thread). */
  readonly sleepPath?: string;
}

const MODES: readonly Mode[] = [
  { label: "single process", processes: 1 },
  { label: "start(2), least-busy (default)", processes: 2, scheduling: "least-busy" },
  { label: "start(2), round-robin (SCHED_RR)", processes: 2, scheduling: "round-robin" },
  { label: "start(2), shared socket (SCHED_NONE)", processes: 2, scheduling: "shared" },
  // The executor mode: one process, the CPU work on a ThreadPoolExecutor thread (`/tsleep/N`).
  { label: "single process, /tsleep on the executor", processes: 1, sleepPath: "/tsleep/" },
];

/** The server side: the demo app's `/`, `/sleep/N` and `/tsleep/N`, served per PROCESSES and SCHEDULING. */
async function serve(): Promise<void> {
  const { Application, HTTPServer, RequestHandler, ThreadPoolExecutor, taskId } = await import("../core/index.ts");
  const { spin } = await import("./tasks.ts");
  // Threads start on first use: only a process that serves `/tsleep` ever starts one.
  const pool = new ThreadPoolExecutor({ module: new URL("./tasks.ts", import.meta.url) });
  class MainHandler extends RequestHandler {
    get(): void { this.write("this is main"); }
  }
  class SleepHandler extends RequestHandler {
    get(n: string): void { this.write(`Awake! ${spin(Number(n))}`); }
  }
  class ThreadSleepHandler extends RequestHandler {
    async get(n: string): Promise<void> { this.write(`Awake! ${await pool.submit<number>("spin", Number(n))}`); }
  }
  const env = process.env;
  const server = new HTTPServer(new Application([
    ["/", MainHandler], ["/sleep/(\\d+)", SleepHandler], ["/tsleep/(\\d+)", ThreadSleepHandler],
  ]));
  server.bind(Number(env["PORT"]), "127.0.0.1");
  const scheduling = env["SCHEDULING"] as "least-busy" | "round-robin" | "shared" | undefined;
  await server.start(Number(env["PROCESSES"] ?? 1), scheduling === undefined ? {} : { scheduling });
  if (taskId() === null) process.stdout.write("ready\n");
}

/** GET on a new connection; resolves to the milliseconds it took. */
function timedGet(port: number, path: string): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, headers: { connection: "close" } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve(performance.now() - start) : reject(new Error(`${path}: ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end();
  });
}

async function startMode(mode: Mode, port: number): Promise<ChildProcess> {
  const env = { ...process.env, PORT: String(port), PROCESSES: String(mode.processes), ...(mode.scheduling ? { SCHEDULING: mode.scheduling } : {}) };
  const child = spawn(process.execPath, ["--import", "tsx", self, "--serve"], { cwd: root, env, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode.label} did not start within 60 s`)), 60_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) { clearTimeout(timer); resolve(); }
    });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`${mode.label} exited (${code})`)); });
  });
  return child;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** One mode's figures: `/sleep/N` alone, and every `/` latency measured while a sleep ran. */
interface Result {
  mode: Mode;
  sleepAlone: number[];
  main: number[];
  waited: number;
}

async function runMode(mode: Mode, n: number, requests: number, rounds: number): Promise<Result> {
  const port = await freePort();
  const child = await startMode(mode, port);
  const result: Result = { mode, sleepAlone: [], main: [], waited: 0 };
  try {
    for (let i = 0; i < 4; i++) await timedGet(port, "/"); // warm-up: JIT, both children
    const sleepPath = mode.sleepPath ?? "/sleep/";
    await timedGet(port, `${sleepPath}1`);
    for (let round = 0; round < rounds; round++) {
      result.sleepAlone.push(await timedGet(port, `${sleepPath}${n}`));
      let sleeping = true;
      const sleep = timedGet(port, `${sleepPath}${n}`).finally(() => { sleeping = false; });
      // The seed's second terminal: started a moment after the first.
      await new Promise((resolve) => setTimeout(resolve, 100));
      // One after another, like a person at the second terminal, for as long as the sleep runs.
      const latencies: number[] = [];
      for (let i = 0; i < requests && sleeping; i++) latencies.push(await timedGet(port, "/"));
      const slept = await sleep;
      result.main.push(...latencies);
      // A `/` that took a good part of the sleep's time was queued behind it.
      result.waited += latencies.filter((ms) => ms > slept / 4).length;
    }
  } finally {
    await stop(child);
  }
  return result;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length === 0 ? Number.NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function print(results: readonly Result[], n: number): void {
  const ms = (v: number): string => (Number.isNaN(v) ? "-" : `${Math.round(v)} ms`);
  console.log(`\n${"mode".padEnd(40)}${`sleep ${n} alone`.padStart(16)}${"/ median".padStart(12)}${"/ max".padStart(12)}  / that waited for the sleep`);
  for (const r of results) {
    console.log(`${r.mode.label.padEnd(40)}${ms(median(r.sleepAlone)).padStart(16)}${ms(median(r.main)).padStart(12)}`
      + `${ms(Math.max(...r.main)).padStart(12)}  ${r.waited} of ${r.main.length}`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes("--serve")) {
    await serve();
  } else {
    const n = Number(process.env["SLEEP_N"] ?? 3);
    const requests = Number(process.env["REQUESTS"] ?? 5);
    const rounds = Number(process.env["ROUNDS"] ?? 3);
    console.log(`The seed's experiment: /sleep/${n} (CPU work), and ${requests} × / on new connections while it runs, ${rounds} rounds per mode`);
    const results: Result[] = [];
    for (const mode of MODES) {
      console.log(`  ${mode.label} ...`);
      results.push(await runMode(mode, n, requests, rounds));
    }
    print(results, n);
  }
}
