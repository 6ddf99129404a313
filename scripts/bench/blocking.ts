/**
 * What blocking detection and overload shedding cost on a hello-world handler: the same app with
 * each setting on, against the same app with both off, measured in the same run.
 *
 *   node --import tsx scripts/bench/blocking.ts   # ROUNDS=5 DURATION=4 CONNECTIONS=32 BLOCKS=30 ONLY=http|inject
 *
 * Every server runs pinned to core 0 and autocannon to core 1 (`taskset`); each variant is
 * measured at the same time as the variant with both settings off, so noise on a shared machine
 * hits both alike, and each figure is the median of its rounds. The thresholds are set high
 * enough never to trigger: what is measured is the price of watching, not of warning or shedding.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath, pathToFileURL } from "node:url";

import { canPin, load as loadFor, measurePerCpu, pinned, type Row } from "./harness.ts";

export type { Row };

type Variant = "off" | "blockingThreshold" | "maxEventLoopDelay";

// The access log is off in every variant, as Fastify's logger is in its peer: only the setting differs.
const VARIANTS: Record<Variant, Record<string, number | boolean>> = {
  off: { accessLog: false },
  blockingThreshold: { accessLog: false, blockingThreshold: 1000 },
  maxEventLoopDelay: { accessLog: false, maxEventLoopDelay: 1000 },
};

const root = fileURLToPath(new URL("../../", import.meta.url));
const self = fileURLToPath(import.meta.url);

/** The server side: a hello-world app with one variant's settings, printing its port. */
async function serve(variant: Variant): Promise<void> {
  const { Application, RequestHandler } = await import("../../core/index.ts");
  class HelloHandler extends RequestHandler {
    get(): void {
      this.write("Hello, world");
    }
  }
  const app = new Application([["/", HelloHandler]], VARIANTS[variant]);
  const server = await app.listen(0, "127.0.0.1");
  // A side port reporting this process's CPU time in microseconds (/proc ticks are 10 ms).
  const control = createServer((_req, res) => {
    const { user, system } = process.cpuUsage();
    res.end(String(user + system));
  });
  await new Promise<void>((resolve) => control.listen(0, "127.0.0.1", resolve));
  const controlPort = (control.address() as AddressInfo).port;
  process.stdout.write(`listening ${server.address()!.port} ${controlPort}\n`);
}


async function startServer(variant: Variant): Promise<Server> {
  const [cmd, ...args] = pinned(0, [process.execPath, "--import", "tsx", self, "--serve", variant]);
  const child = spawn(cmd!, args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const [port, controlPort] = await new Promise<[number, number]>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${variant} server did not start`)), 20_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening (\d+) (\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve([Number(m[1]), Number(m[2])]); }
    });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`${variant} server exited (${code})`)); });
  });
  return { child, port, controlPort };
}


interface Server {
  child: ChildProcess;
  port: number;
  controlPort: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const PAIRS = ["blockingThreshold", "maxEventLoopDelay", "off (control)"] as const;

/**
 * Runs the benchmark and resolves to rows comparing each setting with the same app with both
 * settings off, plus an A/A control (off against another off server) showing the run's noise.
 * Every pair has its own two server processes.
 * Two units: requests per CPU-second of the server (the cost per request; little moved by the
 * rest of the machine) and wall-clock req/s. Options default from `ROUNDS`, `DURATION` (s) and
 * `CONNECTIONS` (per server).
 *
 * Each pair is measured at the same time: both servers share core 0 and two autocannons share
 * core 1, so whatever else the machine does slows both alike.
 */
export async function runBlockingHttpBench({
  rounds = Number(process.env["ROUNDS"] ?? 5),
  seconds = Number(process.env["DURATION"] ?? 4),
  connections = Number(process.env["CONNECTIONS"] ?? 32),
}: { rounds?: number; seconds?: number; connections?: number } = {}): Promise<Row[]> {
  // Each pair has its own peer server, so both sides of a pair are equally warm and equally used.
  const servers = new Map<string, Server>();
  try {
    for (const name of PAIRS) {
      servers.set(name, await startServer(name === "off (control)" ? "off" : name));
      servers.set(`${name} peer`, await startServer("off"));
    }
    for (const server of servers.values()) await loadFor(server.port, "/", 2, connections); // warm-up: JIT, pools
    type Series = { wall: number[]; perCpu: number[]; peerWall: number[]; peerPerCpu: number[] };
    const samples = new Map<string, Series>(PAIRS.map((name) => [name, { wall: [], perCpu: [], peerWall: [], peerPerCpu: [] }]));
    for (let round = 0; round < rounds; round++) {
      for (const name of PAIRS) {
        const subject = servers.get(name)!;
        const peer = servers.get(`${name} peer`)!;
        // Alternate which load generator starts first.
        const [on, off] = round % 2 === 0
          ? await Promise.all([measurePerCpu(subject, seconds, connections), measurePerCpu(peer, seconds, connections)])
          : await Promise.all([measurePerCpu(peer, seconds, connections), measurePerCpu(subject, seconds, connections)]).then(([p, q]) => [q, p] as const);
        const s = samples.get(name)!;
        s.wall.push(on.wall);
        s.perCpu.push(on.perCpu);
        s.peerWall.push(off.wall);
        s.peerPerCpu.push(off.perCpu);
      }
    }
    const rows: Row[] = [];
    for (const name of PAIRS) {
      const s = samples.get(name)!;
      const label = `hello world, ${name === "off (control)" ? "off (A/A control)" : `${name} on`}`;
      if (process.env["VERBOSE"]) {
        const ratios = (a: number[], b: number[]): string => a.map((x, i) => (x / b[i]!).toFixed(3)).join(" ");
        console.error(`${label}: per-CPU ratios ${ratios(s.perCpu, s.peerPerCpu)}; wall ratios ${ratios(s.wall, s.peerWall)}`);
      }
      for (const [unit, on, off] of [["req/CPU-s", s.perCpu, s.peerPerCpu], ["req/s", s.wall, s.peerWall]] as const) {
        rows.push({
          name: label,
          unit,
          typhoon: Math.round(median(on)),
          peer: Math.round(median(off)),
          peerName: "typhoon, both off",
          ratio: median(on.map((x, i) => x / off[i]!)),
          higherIsBetter: true,
          ...(name === "blockingThreshold" ? { target: 0.97 } : {}),
          note: `paired runs over HTTP, median of ${rounds}; the A/A control row shows this run's noise`,
        });
      }
    }
    return rows;
  } finally {
    for (const { child } of servers.values()) child.kill("SIGTERM");
  }
}

/**
 * The same comparison without sockets: each app serves `app.inject()` requests in this process,
 * in short interleaved blocks, and each block is timed in CPU time of this process. It leaves out
 * the socket work, so the share of the settings' cost comes out larger than over a network: a
 * pessimistic figure, but one the rest of a noisy machine barely moves.
 */
export async function runBlockingInjectBench({
  blocks = Number(process.env["BLOCKS"] ?? 30),
  perBlock = Number(process.env["PER_BLOCK"] ?? 2000),
}: { blocks?: number; perBlock?: number } = {}): Promise<Row[]> {
  const { Application, RequestHandler } = await import("../../core/index.ts");
  class HelloHandler extends RequestHandler {
    get(): void {
      this.write("Hello, world");
    }
  }
  const apps = new Map<string, InstanceType<typeof Application>>();
  for (const name of PAIRS) {
    apps.set(name, new Application([["/", HelloHandler]], VARIANTS[name === "off (control)" ? "off" : name]));
    apps.set(`${name} peer`, new Application([["/", HelloHandler]], VARIANTS.off));
  }
  const block = async (app: InstanceType<typeof Application>): Promise<number> => {
    const before = process.cpuUsage();
    for (let i = 0; i < perBlock; i++) {
      const res = await app.inject({ url: "/" });
      if (res.status !== 200) throw new Error(`inject answered ${res.status}`);
      // inject() settles in microtasks: give the loop (and the delay sampler) its turns, as sockets would.
      if (i % 16 === 15) await new Promise((resolve) => setImmediate(resolve));
    }
    const used = process.cpuUsage(before);
    return perBlock / ((used.user + used.system) / 1e6);
  };
  for (const app of apps.values()) await block(app); // warm-up
  const ratios = new Map<string, { on: number[]; off: number[] }>(PAIRS.map((name) => [name, { on: [], off: [] }]));
  for (let round = 0; round < blocks; round++) {
    for (const name of PAIRS) {
      const first = round % 2 === 0;
      const on = first ? await block(apps.get(name)!) : 0;
      const off = await block(apps.get(`${name} peer`)!);
      const r = ratios.get(name)!;
      r.on.push(first ? on : await block(apps.get(name)!));
      r.off.push(off);
    }
  }
  return PAIRS.map((name) => {
    const { on, off } = ratios.get(name)!;
    return {
      name: `hello world inject, ${name === "off (control)" ? "off (A/A control)" : `${name} on`}`,
      unit: "req/CPU-s",
      typhoon: Math.round(median(on)),
      peer: Math.round(median(off)),
      peerName: "typhoon, both off",
      ratio: median(on.map((x, i) => x / off[i]!)),
      higherIsBetter: true,
      ...(name === "blockingThreshold" ? { target: 0.97 } : {}),
      note: `in-process app.inject(), CPU time, median of ${blocks} interleaved blocks (no socket work: a pessimistic share)`,
    };
  });
}

/**
 * The whole benchmark: the HTTP comparison ({@link runBlockingHttpBench}) then the in-process one
 * ({@link runBlockingInjectBench}). `only` (or `ONLY`) picks one of them.
 */
export async function runBlockingBench(options: {
  rounds?: number; seconds?: number; connections?: number; blocks?: number; perBlock?: number; only?: "http" | "inject";
} = {}): Promise<Row[]> {
  const only = options.only ?? process.env["ONLY"];
  return [
    ...(only === "inject" ? [] : await runBlockingHttpBench(options)),
    ...(only === "http" ? [] : await runBlockingInjectBench(options)),
  ];
}

function printRows(rows: Row[]): void {
  console.log(`${"benchmark".padEnd(46)}${"unit".padEnd(11)}${"typhoon".padStart(9)}${"peer".padStart(9)}  ratio`);
  for (const row of rows) {
    console.log(`${row.name.padEnd(46)}${row.unit.padEnd(11)}${String(row.typhoon).padStart(9)}${String(row.peer).padStart(9)}  ${row.ratio.toFixed(3)}× ${row.peerName}`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const serveAt = process.argv.indexOf("--serve");
  if (serveAt !== -1) {
    await serve(process.argv[serveAt + 1] as Variant);
  } else {
    if (!canPin()) console.warn("taskset not found: server and load generator are not pinned");
    printRows(await runBlockingBench());
  }
}
