/**
 * The benchmark harness: starts a peer server as its own process pinned to core 0, drives it with
 * autocannon pinned to core 1, and measures peers in interleaved rounds (ABAB…) so drift on a
 * shared, noisy machine hits every peer alike; each figure is the median of its rounds.
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

/**
 * Measures every target in `rounds` interleaved rounds after a warm-up of each, rotating the order
 * every round so no target always runs first. Servers are started once per distinct spec and
 * stopped at the end, even on failure.
 */
export async function measure(targets: readonly Target[], options: LoadOptions,
  progress: (line: string) => void = () => {}): Promise<Map<string, Samples>> {
  const servers = new Map<string, RunningServer>();
  const specKey = (s: ServerSpec): string => `${s.peer}:${s.scenario}`;
  try {
    for (const { server } of targets) {
      if (!servers.has(specKey(server))) servers.set(specKey(server), await startServer(server));
    }
    for (const t of targets) await load(servers.get(specKey(t.server))!.port, t.path, options.warmupSeconds, options.connections, true, t.request, t.pipelining);
    const samples = new Map<string, Samples>(targets.map((t) => [t.key, { rps: [], cpu: [], cpuUs: [] }]));
    for (let round = 0; round < options.rounds; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const t of order) {
        const server = servers.get(specKey(t.server))!;
        const cpuBefore = server.cpuSeconds();
        const { rps, total } = await load(server.port, t.path, options.seconds, options.connections, true, t.request, t.pipelining);
        const cpuSeconds = server.cpuSeconds() - cpuBefore;
        const s = samples.get(t.key)!;
        s.rps.push(rps);
        // Over the nominal load time: autocannon's own start-up leaves the server idle.
        s.cpu.push(cpuSeconds / options.seconds);
        s.cpuUs.push(cpuSeconds * 1e6 / Math.max(1, total));
        progress(`  round ${round + 1}/${options.rounds}  ${t.key.padEnd(34)} ${Math.round(rps).toString().padStart(7)} req/s`
          + `  ${Math.round(cpuSeconds * 100 / options.seconds).toString().padStart(3)}% cpu  ${(cpuSeconds * 1e6 / Math.max(1, total)).toFixed(1)} µs/req`);
      }
    }
    return samples;
  } finally {
    await stopServers(servers.values());
  }
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

