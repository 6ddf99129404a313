/**
 * What `start(2)` buys on a CPU-bound route: its throughput over `start(1)`, measured in the same
 * run, for each scheduling (least-busy handoff, Node's round-robin, the shared socket); and what
 * the least-busy handoff costs on a hello-world route, against round-robin.
 *
 *   node --import tsx scripts/bench/processes.ts     # ROUNDS=3 DURATION=4 WORK=0.03 ONLY=cpu|hello
 *
 * Nothing is pinned: `start(2)` needs both cores, and autocannon pinned to one of them would
 * slow one child only. autocannon is cheap beside a route that spins for milliseconds; on hello
 * world it competes with the children, alike for both schedulings. Variants are measured in
 * interleaved rounds and each figure is the median of its rounds, with the CPU time the server
 * (supervisor and children) spent per request.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { freePort, load, median, type Row } from "./harness.ts";

const self = fileURLToPath(import.meta.url);
const root = fileURLToPath(new URL("../../", import.meta.url));

/** A server variant: how many processes, which scheduling. */
interface Variant {
  readonly key: string;
  readonly processes: number;
  readonly scheduling?: "least-busy" | "round-robin" | "shared";
}

const VARIANTS: readonly Variant[] = [
  { key: "start(1)", processes: 1 },
  { key: "start(2) least-busy", processes: 2, scheduling: "least-busy" },
  { key: "start(2) round-robin", processes: 2, scheduling: "round-robin" },
  { key: "start(2) shared", processes: 2, scheduling: "shared" },
];

/** The server side: `/` hello world and `/work`, spin(WORK) of CPU per request. */
async function serve(): Promise<void> {
  const { Application, HTTPServer, RequestHandler, taskId } = await import("../../core/index.ts");
  const { spin } = await import("../tasks.ts");
  const work = Number(process.env["WORK"] ?? 0.03);
  class HelloHandler extends RequestHandler {
    get(): void { this.write("Hello, world"); }
  }
  class WorkHandler extends RequestHandler {
    get(): void { this.write(`done ${spin(work)} ${process.pid}`); }
  }
  const server = new HTTPServer(new Application([["/", HelloHandler], ["/work", WorkHandler]], { accessLog: false }));
  server.bind(Number(process.env["PORT"]), "127.0.0.1");
  const scheduling = process.env["SCHEDULING"] as Variant["scheduling"];
  await server.start(Number(process.env["PROCESSES"]), scheduling === undefined ? {} : { scheduling });
  if (taskId() === null) process.stdout.write("ready\n");
}

async function start(variant: Variant): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const env = { ...process.env, PORT: String(port), PROCESSES: String(variant.processes), ...(variant.scheduling ? { SCHEDULING: variant.scheduling } : {}) };
  const child = spawn(process.execPath, ["--import", "tsx", self, "--serve"], { cwd: root, env, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${variant.key} did not start within 60 s`)), 60_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) { clearTimeout(timer); resolve(); }
    });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`${variant.key} exited (${code})`)); });
  });
  return { child, port };
}

/** CPU seconds used so far by `pid` and its children (the supervisor and every child), from /proc (Linux; NaN elsewhere). */
function treeCpuSeconds(pid: number): number {
  const stat = (p: number | string): string[] | null => {
    try {
      const text = readFileSync(`/proc/${p}/stat`, "utf8");
      return text.slice(text.lastIndexOf(")") + 2).split(" ");
    } catch {
      return null;
    }
  };
  const ticks = (fields: string[]): number => Number(fields[11]) + Number(fields[12]); // utime + stime
  const own = stat(pid);
  if (own === null) return Number.NaN;
  let total = ticks(own);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = stat(entry);
    if (fields !== null && Number(fields[1]) === pid) total += ticks(fields); // field 4: ppid
  }
  return total / 100;
}


/** Median req/s and server CPU µs per request of one variant. */
interface Figures {
  rps: number;
  cpuUs: number;
}

/** Loads `path` on each variant in interleaved rounds; resolves to the median figures of each. */
async function rounds(servers: Map<string, { port: number; pid: number }>, keys: readonly string[], path: string,
  options: { seconds: number; rounds: number; connections: number }): Promise<Map<string, Figures>> {
  for (const key of keys) await load(servers.get(key)!.port, path, 1, options.connections, false); // warm-up
  const samples = new Map<string, { rps: number[]; cpuUs: number[] }>(keys.map((k) => [k, { rps: [], cpuUs: [] }]));
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[(i + round) % keys.length]!;
      const { port, pid } = servers.get(key)!;
      const before = treeCpuSeconds(pid);
      const { rps, total } = await load(port, path, options.seconds, options.connections, false);
      const s = samples.get(key)!;
      s.rps.push(rps);
      s.cpuUs.push(((treeCpuSeconds(pid) - before) / total) * 1e6);
    }
  }
  return new Map([...samples].map(([key, s]) => [key, { rps: median(s.rps), cpuUs: median(s.cpuUs) }]));
}

function row(name: string, typhoon: Figures, peer: Figures, peerName: string, target?: number): Row {
  const cpu = Number.isNaN(typhoon.cpuUs) ? {} : { typhoonCpuUs: Math.round(typhoon.cpuUs), peerCpuUs: Math.round(peer.cpuUs) };
  return { name, unit: "req/s", typhoon: Math.round(typhoon.rps), peer: Math.round(peer.rps), peerName, ratio: typhoon.rps / peer.rps,
    higherIsBetter: true, ...cpu, ...(target === undefined ? {} : { target }) };
}

/**
 * Runs the benchmark; resolves to rows: the CPU-bound route under each `start(2)` scheduling
 * against `start(1)` (target 1.8× on 2 cores), and hello world least-busy against round-robin.
 */
export async function runProcessesBench({
  seconds = Number(process.env["DURATION"] ?? 4),
  rounds: roundCount = Number(process.env["ROUNDS"] ?? 3),
}: { seconds?: number; rounds?: number } = {}): Promise<Row[]> {
  const running = new Map<string, ChildProcess>();
  const ports = new Map<string, { port: number; pid: number }>();
  try {
    for (const variant of VARIANTS) {
      const { child, port } = await start(variant);
      running.set(variant.key, child);
      ports.set(variant.key, { port, pid: child.pid! });
    }
    const rows: Row[] = [];
    const only = process.env["ONLY"];
    if (only === undefined || only === "cpu") {
      const cpu = await rounds(ports, VARIANTS.map((v) => v.key), "/work", { seconds, rounds: roundCount, connections: 16 });
      const one = cpu.get("start(1)")!;
      rows.push(
        row("CPU-bound route, start(2) least-busy", cpu.get("start(2) least-busy")!, one, "typhoon start(1)", 1.8),
        row("CPU-bound route, start(2) round-robin", cpu.get("start(2) round-robin")!, one, "typhoon start(1)", 1.8),
        row("CPU-bound route, start(2) shared socket", cpu.get("start(2) shared")!, one, "typhoon start(1)", 1.8),
      );
    }
    if (only === undefined || only === "hello") {
      const hello = await rounds(ports, ["start(2) least-busy", "start(2) round-robin"], "/", { seconds, rounds: roundCount, connections: 64 });
      rows.push(row("hello world, start(2) least-busy", hello.get("start(2) least-busy")!, hello.get("start(2) round-robin")!, "typhoon start(2) round-robin"));
    }
    return rows;
  } finally {
    await Promise.all([...running.values()].map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    })));
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes("--serve")) {
    await serve();
  } else {
    const rows = await runProcessesBench();
    console.log(`${"benchmark".padEnd(42)}${"typhoon".padStart(10)}${"peer".padStart(10)}  ratio`);
    for (const r of rows) {
      const cpu = r.typhoonCpuUs === undefined ? "" : `; server CPU ${r.typhoonCpuUs} vs ${r.peerCpuUs} µs/request`;
      console.log(`${r.name.padEnd(42)}${String(r.typhoon).padStart(10)}${String(r.peer).padStart(10)}  ${r.ratio.toFixed(2)}× of ${r.peerName} (${r.unit})${cpu}`);
    }
  }
}
