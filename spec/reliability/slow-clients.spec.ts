// Slow clients: heads sent a byte at a time (slowloris) are cut by headersTimeout, stalled
// bodies by bodyTimeout (buffered and streamed alike), idle keep-alive connections by
// idleConnectionTimeout, and while dozens of such connections are held open, `/` keeps
// answering quickly.
import t from "tap";
import type { Socket } from "node:net";
import { Application, RequestHandler } from "../../core/index.ts";
import { collect, getOnce, open, type Exchange } from "../helpers/raw-http.ts";
import { captureLog } from "../helpers/log.ts";
import { listen } from "../helpers/listen.ts";

const HEADERS_TIMEOUT = 600;
const BODY_TIMEOUT = 300;
const IDLE_TIMEOUT = 400;
const after = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

class MainHandler extends RequestHandler {
  get(): void { this.write("main"); }
  post(): void { this.write(`got ${this.request.body.length}`); }
}

let streamed = 0;
class StreamHandler extends RequestHandler {
  static override streamRequestBody = true;
  override dataReceived(chunk: Buffer): void { streamed += chunk.length; }
  post(): void { this.write("streamed"); }
}

const app = new Application([["/", MainHandler], ["/stream", StreamHandler]]);
const options = { headersTimeout: HEADERS_TIMEOUT, bodyTimeout: BODY_TIMEOUT, idleConnectionTimeout: IDLE_TIMEOUT };

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Infinity;
}

/** Writes `text` one byte every `gap` ms until it is sent or the socket closes. */
async function trickle(socket: Socket, text: string, gap: number): Promise<void> {
  for (const byte of text) {
    if (socket.destroyed || !socket.writable) return;
    socket.write(byte);
    await after(gap);
  }
}

/** Good requests, one every `every` ms while `busy()`: their latencies in ms. */
async function probe(port: number, busy: () => boolean, every = 50): Promise<number[]> {
  const latencies: number[] = [];
  while (busy()) {
    const started = performance.now();
    const res = await getOnce(port, "/", 2000);
    latencies.push(res?.status === 200 ? performance.now() - started : Infinity);
    await after(every);
  }
  return latencies;
}

t.test("slowloris: heads sent a byte at a time are cut with 408 while / keeps answering fast", async (t) => {
  const { port } = await listen(t, app, options);
  const count = 40;
  const sockets = await Promise.all(Array.from({ length: count }, () => open(port)));
  const started = performance.now();
  const results: Promise<Exchange>[] = sockets.map((socket) => collect(socket, { timeout: HEADERS_TIMEOUT + 3000 }));
  for (const socket of sockets) void trickle(socket, `GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(200)}\r\n\r\n`, 40);
  let pending = count;
  void Promise.all(results.map((r) => r.then(() => { pending--; })));
  const latencies = await probe(port, () => pending > 0);
  const exchanges = await Promise.all(results);
  const elapsed = performance.now() - started;
  t.same(exchanges.filter((e) => e.timedOut).length, 0, "no slow connection outlived the timeout");
  t.ok(exchanges.every((e) => e.closed && e.responses.length === 1 && e.responses[0]!.status === 408),
    `each was answered 408 and closed: ${[...new Set(exchanges.map((e) => e.responses[0]?.status ?? "none"))].join()}`);
  t.ok(elapsed < HEADERS_TIMEOUT + 2500, `all cut within headersTimeout plus the check interval (${Math.round(elapsed)} ms)`);
  t.ok(latencies.length >= 3, `${latencies.length} good requests while under attack`);
  t.ok(latencies.every(Number.isFinite), "every good request was answered");
  // Quick means far below headersTimeout: a server tied up by the slow heads would make good
  // requests wait for it. The bound is loose for a shared, noisy machine.
  t.ok(median(latencies) < HEADERS_TIMEOUT / 2, `median ${Math.round(median(latencies))} ms, slowest ${Math.round(Math.max(...latencies))} ms`);
});

t.test("a stalled body is cut by bodyTimeout with 408 and a close, buffered or streamed", async (t) => {
  const lines = captureLog(t);
  const { port } = await listen(t, app, options);
  for (const path of ["/", "/stream"]) {
    const socket = await open(port);
    const result = collect(socket, { timeout: BODY_TIMEOUT + 3000 });
    const started = performance.now();
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789`);
    const ex = await result;
    const elapsed = performance.now() - started;
    t.same(ex.responses.map((r) => r.status), [408], `${path}: 408`);
    t.equal(ex.responses[0]?.headers["connection"], "close", `${path}: Connection: close`);
    t.ok(ex.closed, `${path}: closed`);
    t.ok(elapsed >= BODY_TIMEOUT - 20 && elapsed < BODY_TIMEOUT + 1500, `${path}: after about bodyTimeout (${Math.round(elapsed)} ms)`);
  }
  t.equal(streamed, 10, "the streaming handler saw the 10 bytes that came");
  t.match(lines.map((l) => l.message).join("\n"), /Timed out reading the request body/);
});

t.test("bodyTimeout bounds each pause, not the whole upload: a steady slow body is read whole", async (t) => {
  const { port } = await listen(t, app, options);
  const socket = await open(port);
  const result = collect(socket, { timeout: 5000 });
  socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\n");
  await trickle(socket, "abcdefgh", BODY_TIMEOUT / 3);
  const ex = await result;
  t.equal(ex.responses[0]?.body.toString(), "got 8", `${8 * BODY_TIMEOUT / 3} ms in all, never a pause past bodyTimeout`);
});

t.test("many stalled uploads at once do not slow down / and are all cut", async (t) => {
  captureLog(t);
  const { port } = await listen(t, app, options);
  const count = 30;
  const sockets = await Promise.all(Array.from({ length: count }, () => open(port)));
  const results = sockets.map((socket) => collect(socket, { timeout: BODY_TIMEOUT + 4000 }));
  sockets.forEach((socket, i) => socket.write(`POST ${i % 2 ? "/stream" : "/"} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial`));
  let pending = count;
  void Promise.all(results.map((r) => r.then(() => { pending--; })));
  const latencies = await probe(port, () => pending > 0, 20);
  const exchanges = await Promise.all(results);
  t.ok(exchanges.every((e) => e.responses[0]?.status === 408 && e.closed), "every stalled upload got 408 and a close");
  t.ok(latencies.length >= 2 && latencies.every(Number.isFinite), `good requests meanwhile: ${latencies.map(Math.round).join(", ")} ms`);
  t.ok(median(latencies) < BODY_TIMEOUT, `median ${Math.round(median(latencies))} ms, far below the stall`);
});

t.test("an idle keep-alive connection is closed after idleConnectionTimeout", async (t) => {
  const { port } = await listen(t, app, options);
  const socket = await open(port);
  const result = collect(socket, { timeout: IDLE_TIMEOUT + 3000 });
  const started = performance.now();
  socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const ex = await result;
  const elapsed = performance.now() - started;
  t.same(ex.responses.map((r) => r.status), [200], "the request was answered");
  t.ok(ex.closed && !ex.timedOut, "then the idle connection was closed by the server");
  t.ok(elapsed >= IDLE_TIMEOUT - 50 && elapsed < IDLE_TIMEOUT + 2000, `after about idleConnectionTimeout (${Math.round(elapsed)} ms)`);
});
