/**
 * The benchmark harness: starts a peer server as its own process pinned to core 0, drives it with
 * autocannon pinned to core 1, and measures typhoon against each peer in rounds, both loaded at
 * the same time by default (see {@link Method}), so drift on a shared, noisy machine hits both
 * alike; each figure is the median of its rounds, each ratio the median of the rounds' ratios.
 *
 * Alongside throughput it samples the server's CPU time: a server well under 100% of its core
 * was not the bottleneck (the load generator or a neighbour was), which compresses every ratio.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

/** One benchmark result, typhoon beside the peer measured in the same run. */
export interface Row {
  name: string;
  unit: string;
  typhoon: number;
  peer: number;
  peerName: string;
  /** typhoon ÷ peer. */
  ratio: number;
  higherIsBetter: boolean;
  /** The ratio the project aims for, when it has one (e.g. 0.9 of raw node:http). */
  target?: number;
  /** Anything a reader needs to weigh the figure. */
  note?: string;
  /**
   * Server CPU time per request, in µs, for typhoon and the peer (Linux). Unlike req/s it barely
   * moves when neighbours take CPU from the server, so on a busy machine `peerCpuUs ÷ typhoonCpuUs`
   * is the steadier estimate of the throughput ratio a quiet machine would show.
   */
  typhoonCpuUs?: number;
  peerCpuUs?: number;
  /**
   * Requests per second of typhoon and the peer, when the row's own figures are something else
   * (HTTP rows lead with requests per server CPU-second, req/s beside them).
   */
  typhoonRps?: number;
  peerRps?: number;
}

/** A server under test: one peer script serving one scenario. */
export interface ServerSpec {
  /** Label in results, e.g. `typhoon`, `fastify`. */
  readonly label: string;
  /** Script under `scripts/bench/peers/`, without `.ts`. */
  readonly peer: string;
  readonly scenario: string;
}

/** A measurement plan: servers and the URL paths to load on them, measured round-robin. */
export interface Target {
  /** Unique key, e.g. `typhoon /resource499/42`. */
  readonly key: string;
  readonly server: ServerSpec;
  readonly path: string;
  /** A request other than a plain GET (e.g. a JSON POST). */
  readonly request?: LoadRequest;
  /** Requests in flight per connection (HTTP/1.1 pipelining); default 1. */
  readonly pipelining?: number;
}

/** Method, headers and body of the request a target is loaded with. */
export interface LoadRequest {
  readonly method: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** Throughput samples of one target, and the server's CPU use over them. */
export interface Samples {
  readonly rps: number[];
  /** Server CPU seconds per wall second during each sample (1 = one full core). */
  readonly cpu: number[];
  /** Server CPU µs per request during each sample. */
  readonly cpuUs: number[];
}

/** How long and how hard to load each target. */
export interface LoadOptions {
  readonly seconds: number;
  readonly rounds: number;
  readonly connections: number;
  readonly warmupSeconds: number;
}

const root = fileURLToPath(new URL("../../", import.meta.url));
const peersDir = fileURLToPath(new URL("./peers/", import.meta.url));
const autocannonBin = createRequire(import.meta.url).resolve("autocannon/autocannon.js");

let tasksetWorks: boolean | undefined;

/** Whether `taskset` can pin processes here (Linux with util-linux, and at least 2 cores). */
export function canPin(): boolean {
  if (tasksetWorks === undefined) {
    try {
      execFileSync("taskset", ["-c", "1", "true"], { stdio: "ignore" });
      tasksetWorks = true;
    } catch {
      tasksetWorks = false;
    }
  }
  return tasksetWorks;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().once("error", reject).listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

/** `command` prefixed with `taskset -c <core>` when pinning works. */
export function pinned(core: number, command: string[]): string[] {
  return canPin() ? ["taskset", "-c", String(core), ...command] : command;
}

/** A running peer server. */
export interface RunningServer {
  readonly child: ChildProcess;
  readonly port: number;
  /** Total CPU seconds the server process has used so far (Linux; `NaN` elsewhere). */
  cpuSeconds(): number;
}

/** Starts a peer as `node --import tsx peers/<peer>.ts <scenario>` on core 0; resolves once it listens. */
export async function startServer(spec: ServerSpec): Promise<RunningServer> {
  const script = `${peersDir}${spec.peer}.ts`;
  const [cmd, ...args] = pinned(0, [process.execPath, "--import", "tsx", script, spec.scenario]);
  const child = spawn(cmd!, args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${spec.label} (${spec.scenario}) did not start within 30 s`)), 30_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening (\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${spec.label} (${spec.scenario}) exited with ${code}`));
    });
  });
  // With taskset the child is taskset, which execs node: same pid, so /proc/<pid>/stat is node's.
  const pid = child.pid!;
  return { child, port, cpuSeconds: () => processCpuSeconds(pid) };
}

/** Stops servers started by {@link startServer}, waiting for them to exit. */
export async function stopServers(servers: Iterable<RunningServer>): Promise<void> {
  await Promise.all([...servers].map(({ child }) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  })));
}

// utime + stime from /proc/<pid>/stat, fields 14 and 15, in clock ticks (100 Hz on Linux).
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * One autocannon run, on core 1 unless `pin` is false (a server spanning both cores), with
 * `pipelining` requests in flight per connection (HTTP/1.1 pipelining; 1: none); resolves to
 * requests per second and in total. Any non-2xx or error fails it.
 */
export function load(port: number, path: string, seconds: number, connections: number, pin = true,
  request?: LoadRequest, pipelining = 1): Promise<{ rps: number; total: number }> {
  const extra = request === undefined ? [] : ["-m", request.method,
    ...Object.entries(request.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}=${v}`]),
    ...(request.body === undefined ? [] : ["-b", request.body])];
  const command = [process.execPath, autocannonBin, "-j", "-n", "-c", String(connections), "-p", String(pipelining),
    "-d", String(seconds), ...extra, `http://127.0.0.1:${port}${path}`];
  const [cmd, ...args] = pin ? pinned(1, command) : command;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, args, { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => { out += chunk.toString(); });
    child.once("exit", (code) => {
      try {
        const result = JSON.parse(out) as { requests: { total: number }; duration: number; non2xx: number; errors: number };
        if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx answers, ${result.errors} errors`);
        resolve({ rps: result.requests.total / result.duration, total: result.requests.total });
      } catch (error) {
        reject(new Error(`autocannon on ${path} failed (exit ${code}): ${String(error)}`));
      }
    });
  });
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Two targets compared in one row: `subject` (typhoon) against `peer`. */
export interface Pair {
  readonly subject: Target;
  readonly peer: Target;
}

/** A pair's samples: each side's, and each round's ratio (subject ÷ peer, per server CPU-second). */
export interface PairSamples {
  readonly subject: Samples;
  readonly peer: Samples;
  readonly ratios: number[];
}

/**
 * How a pair is loaded in a round. `paired`: both servers at the same time, both on core 0 and
 * each with its own autocannon on core 1, so whatever else the machine does slows both alike (on
 * a shared machine the same build moves ±10–20% between sequential rounds; paired, two identical
 * servers read within a few percent of 1.00×: the suite's A/A control row prints it every run).
 * `sequential`: one after the other, the order alternating by round.
 */
export type Method = "paired" | "sequential";

/** Load options and the method of a pairwise measurement. */
export interface PairOptions extends LoadOptions {
  readonly method: Method;
}

/**
 * Measures each pair in `rounds` rounds after a warm-up, rotating the order of the pairs every
 * round. The subject and the peer of a pair are always two processes (slot 0 and slot 1), even
 * when they run the same server (typhoon at one path against typhoon at another): servers are
 * started once per spec and slot, and stopped at the end, even on failure.
 */
export async function measurePairs(pairs: readonly Pair[], options: PairOptions,
  progress: (line: string) => void = () => {}): Promise<PairSamples[]> {
  const servers = new Map<string, RunningServer>();
  const serverFor = async (t: Target, slot: number): Promise<RunningServer> => {
    const key = `${t.server.peer}:${t.server.scenario}#${slot}`;
    let server = servers.get(key);
    if (server === undefined) servers.set(key, server = await startServer(t.server));
    return server;
  };
  try {
    const running: [RunningServer, RunningServer][] = [];
    for (const pair of pairs) running.push([await serverFor(pair.subject, 0), await serverFor(pair.peer, 1)]);
    for (const [i, pair] of pairs.entries()) {
      const [a, b] = running[i]!;
      await Promise.all([loadTarget(a, pair.subject, options.warmupSeconds, options), loadTarget(b, pair.peer, options.warmupSeconds, options)]);
    }
    const results: PairSamples[] = pairs.map(() => ({ subject: emptySamples(), peer: emptySamples(), ratios: [] }));
    for (let round = 0; round < options.rounds; round++) {
      for (let k = 0; k < pairs.length; k++) {
        const i = (k + round) % pairs.length;
        const pair = pairs[i]!;
        const [a, b] = running[i]!;
        let sa: Sample;
        let sb: Sample;
        if (options.method === "paired") [sa, sb] = await Promise.all([sample(a, pair.subject, options), sample(b, pair.peer, options)]);
        else if (round % 2 === 0) { sa = await sample(a, pair.subject, options); sb = await sample(b, pair.peer, options); }
        else { sb = await sample(b, pair.peer, options); sa = await sample(a, pair.subject, options); }
        const r = results[i]!;
        record(r.subject, sa, options.seconds);
        record(r.peer, sb, options.seconds);
        const perCpu = Number.isFinite(sa.cpuSeconds) && Number.isFinite(sb.cpuSeconds) && sa.cpuSeconds > 0 && sb.cpuSeconds > 0;
        r.ratios.push(perCpu ? (sa.total / sa.cpuSeconds) / (sb.total / sb.cpuSeconds) : sa.rps / sb.rps);
        progress(`  round ${round + 1}/${options.rounds}  ${describeSample(pair.subject, sa, options.seconds)} | ${describeSample(pair.peer, sb, options.seconds)}`
          + `  ${r.ratios.at(-1)!.toFixed(3)}×`);
      }
    }
    return results;
  } finally {
    await stopServers(servers.values());
  }
}

/** A server (or, paired, both servers together) below this share of core 0 was not the bottleneck. */
const SATURATED = 0.85;

/**
 * One row from a pair's samples. Its figures are requests per server CPU-second (requests served
 * ÷ the server process's user + system CPU time), which moves far less than req/s when neighbours
 * share the machine; req/s stands beside them. The ratio is the median of the rounds' ratios.
 * Without CPU figures (not Linux) the row falls back to req/s.
 */
export function pairRow(result: PairSamples, method: Method, name: string, peerName: string, extra: Partial<Row> = {}): Row {
  const t = summary(result.subject);
  const p = summary(result.peer);
  const notes = new Set(extra.note === undefined ? [] : [extra.note]);
  if (method === "paired" && t.cpu + p.cpu < SATURATED) notes.add(`the two servers used ${Math.round((t.cpu + p.cpu) * 100)}% of their core`);
  if (method === "sequential") {
    for (const [who, s] of [["typhoon", t], [peerName, p]] as const) {
      if (s.cpu < SATURATED) notes.add(`${who} server at ${Math.round(s.cpu * 100)}% of its core`);
    }
  }
  const note = [...notes].join("; ");
  const perCpu = t.cpuUs > 0 && p.cpuUs > 0 && Number.isFinite(t.cpuUs) && Number.isFinite(p.cpuUs);
  return {
    name, unit: perCpu ? "req/CPU-s" : "req/s", typhoon: Math.round(perCpu ? 1e6 / t.cpuUs : t.rps),
    peer: Math.round(perCpu ? 1e6 / p.cpuUs : p.rps), peerName,
    ratio: perCpu ? median(result.ratios) : t.rps / p.rps, higherIsBetter: true, ...extra, ...(note === "" ? {} : { note }),
    ...(perCpu ? { typhoonCpuUs: round1(t.cpuUs), peerCpuUs: round1(p.cpuUs), typhoonRps: Math.round(t.rps), peerRps: Math.round(p.rps) } : {}),
  };
}

function summary(s: Samples): { rps: number; cpu: number; cpuUs: number } {
  return { rps: median(s.rps), cpu: median(s.cpu), cpuUs: median(s.cpuUs) };
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

/** The method named by `BENCH_METHOD` (`paired`, the default, or `sequential`). */
export function methodFromEnvironment(): Method {
  const raw = process.env["BENCH_METHOD"] || "paired";
  if (raw !== "paired" && raw !== "sequential") throw new Error(`BENCH_METHOD must be paired or sequential, got ${raw}`);
  return raw;
}

/** One load of one target: requests served, req/s, and the server's CPU seconds meanwhile. */
interface Sample {
  readonly rps: number;
  readonly total: number;
  readonly cpuSeconds: number;
}

function loadTarget(server: RunningServer, t: Target, seconds: number, options: LoadOptions): Promise<{ rps: number; total: number }> {
  return load(server.port, t.path, seconds, options.connections, true, t.request, t.pipelining);
}

async function sample(server: RunningServer, t: Target, options: LoadOptions): Promise<Sample> {
  const cpuBefore = server.cpuSeconds();
  const { rps, total } = await loadTarget(server, t, options.seconds, options);
  return { rps, total, cpuSeconds: server.cpuSeconds() - cpuBefore };
}

function emptySamples(): Samples {
  return { rps: [], cpu: [], cpuUs: [] };
}

function record(samples: Samples, s: Sample, seconds: number): void {
  samples.rps.push(s.rps);
  // Over the nominal load time: autocannon's own start-up leaves the server idle.
  samples.cpu.push(s.cpuSeconds / seconds);
  samples.cpuUs.push(s.cpuSeconds * 1e6 / Math.max(1, s.total));
}

function describeSample(t: Target, s: Sample, seconds: number): string {
  return `${t.key} ${Math.round(s.rps)} req/s ${Math.round(s.cpuSeconds * 100 / seconds)}% cpu ${(s.cpuSeconds * 1e6 / Math.max(1, s.total)).toFixed(1)} µs/req`;
}

/** CPU seconds (user + system) a bench server has used so far, asked on its control port. */
export async function serverCpuSeconds(controlPort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${controlPort}/`);
  return Number(await res.text()) / 1e6;
}

/**
 * Loads a server that reports its own CPU time on `controlPort` (see `serverCpuSeconds`):
 * wall-clock req/s and requests per server CPU-second, the figure that holds on a shared machine.
 */
export async function measurePerCpu(server: { port: number; controlPort: number }, seconds: number, connections: number): Promise<{ wall: number; perCpu: number }> {
  const cpuBefore = await serverCpuSeconds(server.controlPort);
  const { rps, total } = await load(server.port, "/", seconds, connections);
  const cpu = (await serverCpuSeconds(server.controlPort)) - cpuBefore;
  return { wall: rps, perCpu: total / cpu };
}

