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

/**
 * The median latency of `/` on this machine right now, with nothing else going on: latency
 * bounds under attack are this times a factor, or an absolute floor, whichever is larger, so a
 * loaded CI machine widens them instead of failing.
 */
async function baseline(port: number): Promise<number> {
  const latencies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await getOnce(port, "/", 10_000);
    latencies.push(performance.now() - started);
  }
  return median(latencies);
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
  const quiet = await baseline(port);
  const count = 40;
  const sockets = await Promise.all(Array.from({ length: count }, () => open(port)));
  const started = performance.now();
  const head = `GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(200)}\r\n\r\n`;
  // The whole head would take head.length × 40 ms (about 10 s) to arrive: a cut well before that
  // is the timeout's doing.
  const trickleTime = head.length * 40;
  const results: Promise<Exchange>[] = sockets.map((socket) => collect(socket, { timeout: trickleTime }));
  for (const socket of sockets) void trickle(socket, head, 40);
  let pending = count;
  void Promise.all(results.map((r) => r.then(() => { pending--; })));
  const latencies = await probe(port, () => pending > 0);
  const exchanges = await Promise.all(results);
  const elapsed = performance.now() - started;
  t.same(exchanges.filter((e) => e.timedOut).length, 0, "no slow connection outlived the timeout");
  t.ok(exchanges.every((e) => e.closed && e.responses.length === 1 && e.responses[0]!.status === 408),
    `each was answered 408 and closed: ${[...new Set(exchanges.map((e) => e.responses[0]?.status ?? "none"))].join()}`);
  t.ok(elapsed < trickleTime * 0.8, `all cut by headersTimeout, long before their heads could have arrived (${Math.round(elapsed)} ms)`);
  t.ok(latencies.length >= 3, `${latencies.length} good requests while under attack`);
  t.ok(latencies.every(Number.isFinite), "every good request was answered");
  // Quick means far below headersTimeout: a server tied up by the slow heads would make good
  // requests wait for it. The bound widens with this machine's own quiet latency.
  const bound = Math.max(HEADERS_TIMEOUT / 2, 10 * quiet);
  t.ok(median(latencies) < bound, `median ${Math.round(median(latencies))} ms (bound ${Math.round(bound)}, quiet ${quiet.toFixed(1)}), slowest ${Math.round(Math.max(...latencies))} ms`);
});

t.test("a stalled body is cut by bodyTimeout with 408 and a close, buffered or streamed", async (t) => {
  const lines = captureLog(t);
  const { port } = await listen(t, app, options);
  for (const path of ["/", "/stream"]) {
    const socket = await open(port);
    const result = collect(socket, { timeout: BODY_TIMEOUT + 15_000 });
    const started = performance.now();
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789`);
    const ex = await result;
    const elapsed = performance.now() - started;
    t.same(ex.responses.map((r) => r.status), [408], `${path}: 408`);
    t.equal(ex.responses[0]?.headers["connection"], "close", `${path}: Connection: close`);
    t.ok(ex.closed, `${path}: closed`);
    // The 408 says the timeout fired; the lower bound that it was not early. The upper bound only
    // rules out "never" (timers run late on a loaded machine, never early).
    t.ok(elapsed >= BODY_TIMEOUT - 20 && elapsed < BODY_TIMEOUT + 10_000, `${path}: after bodyTimeout (${Math.round(elapsed)} ms)`);
  }
  t.equal(streamed, 10, "the streaming handler saw the 10 bytes that came");
  t.match(lines.map((l) => l.message).join("\n"), /Timed out reading the request body/);
});

t.test("bodyTimeout bounds each pause, not the whole upload: a steady slow body is read whole", async (t) => {
  // Client and server share this process: a stall of the process longer than bodyTimeout minus
  // the gap would look like a pause. A longer bodyTimeout here leaves 850 ms of margin per byte.
  const bodyTimeout = 1000;
  const gap = 150;
  const body = "abcdefghijklmnop";
  const { port } = await listen(t, app, { ...options, bodyTimeout });
  const socket = await open(port);
  const result = collect(socket, { timeout: body.length * gap + 10_000 });
  socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
  await trickle(socket, body, gap);
  const ex = await result;
  t.ok(body.length * gap > 2 * bodyTimeout, "the upload as a whole lasts longer than bodyTimeout");
  t.equal(ex.responses[0]?.body.toString(), `got ${body.length}`, `${body.length * gap} ms in all, never a pause past bodyTimeout`);
});

t.test("many stalled uploads at once do not slow down / and are all cut", async (t) => {
  captureLog(t);
  const { port } = await listen(t, app, options);
  const quiet = await baseline(port);
  const count = 30;
  const sockets = await Promise.all(Array.from({ length: count }, () => open(port)));
  const results = sockets.map((socket) => collect(socket, { timeout: BODY_TIMEOUT + 15_000 }));
  sockets.forEach((socket, i) => socket.write(`POST ${i % 2 ? "/stream" : "/"} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial`));
  let pending = count;
  void Promise.all(results.map((r) => r.then(() => { pending--; })));
  const latencies = await probe(port, () => pending > 0, 20);
  const exchanges = await Promise.all(results);
  t.ok(exchanges.every((e) => e.responses[0]?.status === 408 && e.closed), "every stalled upload got 408 and a close");
  t.ok(latencies.length >= 2 && latencies.every(Number.isFinite), `good requests meanwhile: ${latencies.map(Math.round).join(", ")} ms`);
  const bound = Math.max(BODY_TIMEOUT, 10 * quiet);
  t.ok(median(latencies) < bound, `median ${Math.round(median(latencies))} ms (bound ${Math.round(bound)}, quiet ${quiet.toFixed(1)}), far below the stall`);
});

t.test("an idle keep-alive connection is closed after idleConnectionTimeout", async (t) => {
  const { port } = await listen(t, app, options);
  const socket = await open(port);
  const result = collect(socket, { timeout: IDLE_TIMEOUT + 15_000 });
  const started = performance.now();
  socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const ex = await result;
  const elapsed = performance.now() - started;
  t.same(ex.responses.map((r) => r.status), [200], "the request was answered");
  t.ok(ex.closed && !ex.timedOut, "then the idle connection was closed by the server");
  // Closed by the server at all is the behaviour; early is the bug a bound can catch (late is load).
  t.ok(elapsed >= IDLE_TIMEOUT - 50 && elapsed < IDLE_TIMEOUT + 10_000, `after idleConnectionTimeout (${Math.round(elapsed)} ms)`);
});
