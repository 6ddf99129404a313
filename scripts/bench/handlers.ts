/**
 * Benchmarks of the built-in handlers, each beside a peer measured in the same run:
 * StaticFileHandler against `express.static` (a 26-byte and a 1 MiB file), compressed
 * responses against raw node:http with `zlib.gzipSync`, and WebSocket echo against a bare `ws`
 * server. The server runs pinned to core 0, the load to core 1, in interleaved rounds; each
 * figure is the median of its rounds.
 *
 *   node --import tsx scripts/bench/handlers.ts [seconds per round = 3] [rounds = 3]
 *   BENCH_ONLY=websocket node --import tsx scripts/bench/handlers.ts   (cases whose name matches)
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { createRequire } from "node:module";
import express from "express";
import WebSocket, { WebSocketServer } from "ws";
import { Application } from "../../core/web/app.ts";
import { RequestHandler } from "../../core/web/handler.ts";
import { StaticFileHandler } from "../../handlers/static.ts";
import { WebSocketHandler } from "../../handlers/websocket.ts";

const SELF = fileURLToPath(import.meta.url);
// autocannon ships no types: the little of its API used here.
const autocannon = createRequire(import.meta.url)("autocannon") as (options: Record<string, unknown>) =>
  Promise<{ requests: { average: number }; non2xx: number; errors: number }>;
const PAGE = `<html><body>${"<p>typhoon compresses text, and so does the peer</p>\n".repeat(120)}</body></html>`;

// ---- Server side (a child process: `handlers.ts serve <server> <dir>`) ---------------------

class PageHandler extends RequestHandler {
  get(): void {
    this.write(PAGE);
  }
}

class EchoHandler extends WebSocketHandler {
  override onMessage(message: string | Buffer): void {
    void this.writeMessage(message);
  }
}

async function serve(kind: string, dir: string): Promise<void> {
  const ready = (port: number): void => { process.send?.({ port }); };
  if (kind === "typhoon") {
    const app = new Application([
      ["/s/(.*)", StaticFileHandler, { path: dir }], ["/page", PageHandler], ["/ws", EchoHandler],
    ], { compressResponse: true, etag: false, accessLog: false });
    const server = await app.listen(0, "127.0.0.1");
    ready(server.address()!.port);
  } else if (kind === "express") {
    const app = express();
    app.use("/s", express.static(dir));
    const server = app.listen(0, "127.0.0.1", () => ready((server.address() as { port: number }).port));
  } else if (kind === "node") {
    const wss = new WebSocketServer({ noServer: true });
    const server = createServer((req, res) => {
      const gzip = /\bgzip\b/.test(req.headers["accept-encoding"] ?? "");
      const body = gzip ? gzipSync(PAGE) : Buffer.from(PAGE);
      res.writeHead(200, { "content-type": "text/html; charset=UTF-8", "content-length": body.length, vary: "Accept-Encoding",
        ...(gzip ? { "content-encoding": "gzip" } : {}) });
      res.end(body);
    });
    server.on("upgrade", (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    }));
    server.listen(0, "127.0.0.1", () => ready((server.address() as { port: number }).port));
  }
}

// ---- Driver side ---------------------------------------------------------------------------

const pin = spawnSync("taskset", ["-c", "0", "true"]).status === 0;

function start(kind: string, dir: string): Promise<{ child: ChildProcess; port: number }> {
  const args = ["--import", "tsx", SELF, "serve", kind, dir];
  const child = pin ? spawn("taskset", ["-c", "0", process.execPath, ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
    : spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.once("message", (m) => resolve({ child, port: (m as { port: number }).port }));
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

// The load generator runs in this process: pin it to core 1 for the whole run.
function pinSelf(): void {
  if (pin) spawnSync("taskset", ["-p", "-c", "1", String(process.pid)], { stdio: "ignore" });
}

async function http(port: number, path: string, seconds: number, headers: Record<string, string> = {}): Promise<number> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}${path}`, connections: 32, duration: seconds, headers });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${path}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result.requests.average;
}

/** Round trips per second: `clients` sockets, each sending its next message when the echo arrives. */
async function echo(port: number, seconds: number, clients = 32): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: clients }, () => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  })));
  let count = 0;
  let running = true;
  const payload = JSON.stringify({ body: "x".repeat(64) });
  for (const ws of sockets) {
    ws.on("message", () => { count++; if (running) ws.send(payload); });
    ws.send(payload);
  }
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  for (const ws of sockets) ws.terminate();
  return count / seconds;
}

interface Case {
  readonly name: string;
  readonly peer: string;
  run(port: number, seconds: number): Promise<number>;
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 3);
  const rounds = Number(process.argv[3] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), "typhoon-bench-"));
  writeFileSync(join(dir, "robots.txt"), "User-agent: *\nDisallow: /\n");
  writeFileSync(join(dir, "big.bin"), Buffer.alloc(1024 * 1024, 7));
  pinSelf();
  const cases: Case[] = [
    { name: "static 26 B (req/s)", peer: "express", run: (p, s) => http(p, "/s/robots.txt", s) },
    { name: "static 1 MiB (req/s)", peer: "express", run: (p, s) => http(p, "/s/big.bin", s) },
    { name: "gzip 6 KiB page (req/s)", peer: "node", run: (p, s) => http(p, "/page", s, { "accept-encoding": "gzip" }) },
    { name: "WebSocket echo (msg/s)", peer: "node", run: (p, s) => echo(p, s) },
  ];
  const servers = new Map<string, { child: ChildProcess; port: number }>();
  try {
    for (const kind of ["typhoon", "express", "node"]) servers.set(kind, await start(kind, dir));
    console.log(`${pin ? "server on core 0, load on core 1" : "unpinned (no taskset)"}; ${rounds} rounds of ${seconds} s, interleaved\n`);
    console.log("case                       typhoon        peer            ratio");
    const only = process.env["BENCH_ONLY"];
    for (const c of cases.filter((x) => only === undefined || x.name.toLowerCase().includes(only.toLowerCase()))) {
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let i = 0; i < rounds; i++) {
        ours.push(await c.run(servers.get("typhoon")!.port, seconds));
        theirs.push(await c.run(servers.get(c.peer)!.port, seconds));
      }
      const a = median(ours);
      const b = median(theirs);
      console.log(`${c.name.padEnd(26)} ${a.toFixed(0).padStart(8)}   ${c.peer.padEnd(7)} ${b.toFixed(0).padStart(8)}   ${(a / b).toFixed(2)}×`);
    }
  } finally {
    for (const { child } of servers.values()) child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

if (process.argv[2] === "serve") await serve(process.argv[3]!, process.argv[4]!);
else await main();
