/**
 * What `start(2)` buys on a CPU-bound route: its throughput over `start(1)`, measured in the same
 * run, for each scheduling (least-busy handoff, Node's round-robin, the shared socket); and what
 * the least-busy handoff costs on a hello-world route, against round-robin.
 *
 *   node --import tsx scripts/bench/processes.ts     # ROUNDS=3 DURATION=4 WORK=0.03 ONLY=cpu|hello
 *
 * Nothing is pinned: `start(2)` needs both cores, so the load generator shares them with the
 * children. It should take as little of them as it can: wrk (C, `apt-get install wrk`) is used
 * when it is on the PATH, else autocannon, which here takes 10–15% of a core even at 500 req/s
 * (measured: enough to hold `start(2)` on the CPU-bound route at 1.6× of `start(1)` where wrk
 * lets it reach 1.9×). The rows name the generator. The CPU-bound variants are measured in
 * interleaved rounds; hello world's least-busy and round-robin in paired rounds (both loaded at
 * once, so both are slowed alike: one after the other, the same server moved ±15% here). Each
 * figure is the median of its rounds, with the CPU time the server (supervisor and children)
 * spent per request.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { freePort, load, median, type Row } from "./harness.ts";

const self = fileURLToPath(import.meta.url);
const root = fileURLToPath(new URL("../../", import.meta.url));

/** wrk when it is installed (it takes far less CPU than autocannon), else autocannon. */
const generator: "wrk" | "autocannon" = spawnSync("wrk", ["--version"]).error === undefined ? "wrk" : "autocannon";

/** One wrk run: requests per second and in total; any socket error or non-2xx answer fails it. */
function wrkLoad(port: number, path: string, seconds: number, connections: number): Promise<{ rps: number; total: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", ["-t1", `-c${connections}`, `-d${seconds}s`, `http://127.0.0.1:${port}${path}`], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => { out += chunk.toString(); });
    child.once("exit", (code) => {
      const total = /(\d+) requests in ([\d.]+)(m?s)/.exec(out);
      const failed = /Non-2xx or 3xx responses|Socket errors/.exec(out);
      if (code !== 0 || total === null || failed !== null) {
        reject(new Error(`wrk on ${path} failed (exit ${code}): ${out.trim().split("\n").slice(-3).join(" / ")}`));
        return;
      }
      const duration = Number(total[2]) / (total[3] === "ms" ? 1000 : 1);
      resolve({ rps: Number(total[1]) / duration, total: Number(total[1]) });
    });
  });
}

/** One load of `path` with the generator in use, unpinned (see the top of this file). */
function loadAll(port: number, path: string, seconds: number, connections: number): Promise<{ rps: number; total: number }> {
  return generator === "wrk" ? wrkLoad(port, path, seconds, connections) : load(port, path, seconds, connections, false);
}

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
  for (const key of keys) await loadAll(servers.get(key)!.port, path, 1, options.connections); // warm-up
  const samples = new Map<string, { rps: number[]; cpuUs: number[] }>(keys.map((k) => [k, { rps: [], cpuUs: [] }]));
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[(i + round) % keys.length]!;
      const { port, pid } = servers.get(key)!;
      const before = treeCpuSeconds(pid);
      const { rps, total } = await loadAll(port, path, options.seconds, options.connections);
      const s = samples.get(key)!;
      s.rps.push(rps);
      s.cpuUs.push(((treeCpuSeconds(pid) - before) / total) * 1e6);
    }
  }
  return new Map([...samples].map(([key, s]) => [key, { rps: median(s.rps), cpuUs: median(s.cpuUs) }]));
}

/**
 * Loads `path` on two variants at the same time in each round (both slowed alike by whatever
 * else the machine does); resolves to each one's median figures and the median of the rounds'
 * req/s ratios (`a` ÷ `b`).
 */
async function pairedRounds(a: { port: number; pid: number }, b: { port: number; pid: number }, path: string,
  options: { seconds: number; rounds: number; connections: number }): Promise<{ a: Figures; b: Figures; ratio: number }> {
  await Promise.all([a, b].map((s) => loadAll(s.port, path, 1, options.connections))); // warm-up
  const samples = [a, b].map(() => ({ rps: [] as number[], cpuUs: [] as number[] }));
  const ratios: number[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const before = [a, b].map((s) => treeCpuSeconds(s.pid));
    const loads = await Promise.all([a, b].map((s) => loadAll(s.port, path, options.seconds, options.connections)));
    [a, b].forEach((s, i) => {
      samples[i]!.rps.push(loads[i]!.rps);
      samples[i]!.cpuUs.push(((treeCpuSeconds(s.pid) - before[i]!) / loads[i]!.total) * 1e6);
    });
    ratios.push(loads[0]!.rps / loads[1]!.rps);
  }
  const [fa, fb] = samples.map((s) => ({ rps: median(s.rps), cpuUs: median(s.cpuUs) }));
  return { a: fa!, b: fb!, ratio: median(ratios) };
}

function row(name: string, typhoon: Figures, peer: Figures, peerName: string, target?: number, ratio = typhoon.rps / peer.rps): Row {
  const cpu = Number.isNaN(typhoon.cpuUs) ? {} : { typhoonCpuUs: Math.round(typhoon.cpuUs), peerCpuUs: Math.round(peer.cpuUs) };
  return { name: `${name} (${generator})`, unit: "req/s", typhoon: Math.round(typhoon.rps), peer: Math.round(peer.rps), peerName, ratio,
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
      // Paired: what the handoff costs per request shows only when both are slowed alike.
      const hello = await pairedRounds(ports.get("start(2) least-busy")!, ports.get("start(2) round-robin")!, "/",
        { seconds, rounds: roundCount, connections: 64 });
      rows.push(row("hello world, start(2) least-busy, paired", hello.a, hello.b, "typhoon start(2) round-robin", 0.97, hello.ratio));
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
