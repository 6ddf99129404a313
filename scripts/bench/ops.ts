/**
 * What operating features cost on a hello-world handler: the access log (typhoon's default
 * logger, JSON lines to stdout), request metrics (a `MetricsHandler` route, so every request is
 * counted), and both, each against the same app with both off; and Fastify with its logger (pino)
 * on, beside Fastify with it off and beside typhoon with both on.
 *
 *   node --import tsx scripts/bench/ops.ts   # ROUNDS=3 DURATION=4 CONNECTIONS=32 ONLY=<name part>
 *
 * Every server's stdout and stderr are /dev/null (typhoon logs to stderr, pino to stdout; a file:
 * writes are synchronous, as to a log file or a journald pipe), so the records are really
 * formatted and written. Each pair is measured at the
 * same time, both servers on core 0 and two autocannons on core 1 (`taskset`), so the rest of
 * the machine slows both alike; figures are medians of the rounds. The main unit is requests per
 * CPU-second of the server, which neighbours barely move.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { openSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { load as loadFor, measurePerCpu, pinned, type Row } from "./harness.ts";

export type { Row };

type Variant = "off" | "log" | "metrics" | "both" | "fastify" | "fastify-log";

const root = fileURLToPath(new URL("../../", import.meta.url));
const self = fileURLToPath(import.meta.url);

/** The server side: one variant, announcing its ports over IPC (stdout and stderr are the log). */
async function serve(variant: Variant): Promise<void> {
  let port: number;
  if (variant === "fastify" || variant === "fastify-log") {
    const { default: Fastify } = await import("fastify");
    // logger: true is pino to stdout with Fastify's request logging (two records per request).
    const app = Fastify({ logger: variant === "fastify-log" });
    app.get("/", async () => "Hello, world");
    await app.listen({ port: 0, host: "127.0.0.1" });
    port = (app.server.address() as AddressInfo).port;
  } else {
    const { Application, RequestHandler, MetricsHandler } = await import("../../core/index.ts");
    class HelloHandler extends RequestHandler {
      get(): void {
        this.write("Hello, world");
      }
    }
    const rules: [string, typeof RequestHandler][] = [["/", HelloHandler]];
    if (variant === "metrics" || variant === "both") rules.push(["/metrics", MetricsHandler]);
    const app = new Application(rules, { accessLog: variant === "log" || variant === "both" });
    const server = await app.listen(0, "127.0.0.1");
    port = server.address()!.port;
  }
  // A side port reporting this process's CPU time in microseconds (/proc ticks are 10 ms).
  const control = createServer((_req, res) => {
    const { user, system } = process.cpuUsage();
    res.end(String(user + system));
  });
  await new Promise<void>((resolve) => control.listen(0, "127.0.0.1", resolve));
  process.send?.({ port, controlPort: (control.address() as AddressInfo).port });
}

interface Server {
  child: ChildProcess;
  port: number;
  controlPort: number;
}


async function startServer(variant: Variant): Promise<Server> {
  const [cmd, ...args] = pinned(0, [process.execPath, "--import", "tsx", self, "--serve", variant]);
  const devNull = openSync("/dev/null", "w");
  const child = spawn(cmd!, args, { cwd: root, stdio: ["ignore", devNull, devNull, "ipc"] });
  const { port, controlPort } = await new Promise<{ port: number; controlPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${variant} server did not start`)), 30_000);
    child.once("message", (m) => { clearTimeout(timer); resolve(m as { port: number; controlPort: number }); });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`${variant} server exited (${code})`)); });
  });
  return { child, port, controlPort };
}


function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Subject against peer, each pair measured at the same time. */
const PAIRS: readonly { name: string; subject: Variant; peer: Variant; peerName: string; target?: number }[] = [
  { name: "hello world, access log + metrics on", subject: "both", peer: "off", peerName: "typhoon, both off", target: 0.9 },
  { name: "hello world, access log on", subject: "log", peer: "off", peerName: "typhoon, both off" },
  { name: "hello world, metrics on", subject: "metrics", peer: "off", peerName: "typhoon, both off" },
  { name: "hello world, access log + metrics on, vs Fastify logging", subject: "both", peer: "fastify-log", peerName: "Fastify, logger on" },
  { name: "hello world, Fastify's logger on (its own cost)", subject: "fastify-log", peer: "fastify", peerName: "Fastify, logger off" },
];

/**
 * Runs the benchmark; resolves to two rows per pair (req/CPU-s and req/s). Options default from
 * `ROUNDS`, `DURATION` (s) and `CONNECTIONS` (per server).
 */
export async function runOpsBench({
  rounds = Number(process.env["ROUNDS"] ?? 3),
  seconds = Number(process.env["DURATION"] ?? 4),
  connections = Number(process.env["CONNECTIONS"] ?? 32),
}: { rounds?: number; seconds?: number; connections?: number } = {}): Promise<Row[]> {
  const servers: Server[] = [];
  try {
    const rows: Row[] = [];
    const only = process.env["ONLY"];
    for (const pair of PAIRS.filter((p) => only === undefined || `${p.name} vs ${p.peerName}`.includes(only))) {
      // Each pair has its own two servers, equally warm and equally used.
      const subject = await startServer(pair.subject);
      const peer = await startServer(pair.peer);
      servers.push(subject, peer);
      await Promise.all([loadFor(subject.port, "/", 2, connections), loadFor(peer.port, "/", 2, connections)]);
      const s = { wall: [] as number[], perCpu: [] as number[], peerWall: [] as number[], peerPerCpu: [] as number[] };
      for (let round = 0; round < rounds; round++) {
        const [on, off] = await Promise.all([measurePerCpu(subject, seconds, connections), measurePerCpu(peer, seconds, connections)]);
        s.wall.push(on.wall);
        s.perCpu.push(on.perCpu);
        s.peerWall.push(off.wall);
        s.peerPerCpu.push(off.perCpu);
      }
      for (const [unit, a, b] of [["req/CPU-s", s.perCpu, s.peerPerCpu], ["req/s", s.wall, s.peerWall]] as const) {
        rows.push({
          name: pair.name, unit, typhoon: Math.round(median(a)), peer: Math.round(median(b)), peerName: pair.peerName,
          ratio: median(a.map((x, i) => x / b[i]!)), higherIsBetter: true,
          ...(pair.target !== undefined && unit === "req/CPU-s" ? { target: pair.target } : {}),
          note: `paired runs over HTTP, median of ${rounds}; logs to /dev/null (JSON lines)`,
        });
      }
      subject.child.kill("SIGTERM");
      peer.child.kill("SIGTERM");
    }
    return rows;
  } finally {
    for (const { child } of servers) if (child.exitCode === null) child.kill("SIGTERM");
  }
}

const serveAt = process.argv.indexOf("--serve");
if (serveAt !== -1) {
  await serve(process.argv[serveAt + 1] as Variant);
} else if (process.argv[1] === self) {
  for (const row of await runOpsBench()) {
    console.log(`${row.name.padEnd(58)} ${row.unit.padEnd(9)} ${String(row.typhoon).padStart(7)} vs ${String(row.peer).padStart(7)} ${row.peerName.padEnd(20)} ${row.ratio.toFixed(3)}×`);
  }
}
