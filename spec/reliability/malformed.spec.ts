// Malformed HTTP on raw sockets: every broken request gets the right 4xx or a clean close, no
// handler code runs for what the parser refuses, and the server answers a good request on a
// fresh connection after each bad one.
import t, { type Test } from "tap";
import { gzipSync } from "node:zlib";
import { Application, RequestHandler, type HTTPServerOptions } from "../../core/index.ts";
import { listen } from "../helpers/listen.ts";
import { exchange, getOnce, open, collect, type Exchange } from "../helpers/raw-http.ts";
import { captureLog } from "../helpers/log.ts";
import { waitFor } from "../helpers/wait.ts";

let handled = 0;

class MainHandler extends RequestHandler {
  get(): void {
    handled++;
    this.write("main");
  }
  post(): void {
    handled++;
    this.write(`got ${this.request.body.length}`);
  }
}

class StreamHandler extends RequestHandler {
  static override streamRequestBody = true;
  post(): void { this.write("streamed"); }
}

class EchoHandler extends RequestHandler {
  get(value: string): void {
    handled++;
    this.write(`value=${value} q=${this.getArgument("q", "none")}`);
  }
}

const app = new Application([["/", MainHandler], ["/echo/(.*)", EchoHandler], ["/stream", StreamHandler]]);
const CRLF = "\r\n";

async function serve(t: Test, options: HTTPServerOptions = {}): Promise<number> {
  return (await listen(t, app, options)).port;
}

async function stillServes(t: Test, port: number, label: string): Promise<void> {
  const good = await getOnce(port, "/");
  t.equal(good?.status, 200, `${label}: a good request afterwards is answered`);
}

/** The server answered exactly `status` and closed the connection. */
function answeredAndClosed(t: Test, ex: Exchange, status: number, label: string): void {
  t.same(ex.responses.map((r) => r.status), [status], `${label}: ${status}`);
  t.ok(ex.closed, `${label}: connection closed`);
  t.notOk(ex.timedOut, `${label}: no hang`);
}

interface Case { readonly name: string; readonly request: string; readonly status: number }

// Refused by the parser before any handler runs.
const PARSER_400: Case[] = [
  { name: "garbage request line", request: `GARBAGE${CRLF}${CRLF}`, status: 400 },
  { name: "lower-case method", request: `get / HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}`, status: 400 },
  { name: "unknown method", request: `FOO / HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}`, status: 400 },
  { name: "unknown HTTP version", request: `GET / HTTP/9.9${CRLF}Host: x${CRLF}${CRLF}`, status: 400 },
  { name: "space inside the target", request: `GET /a b HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}`, status: 400 },
  { name: "NUL in the target", request: `GET /\x00 HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}`, status: 400 },
  { name: "raw high bytes in the target", request: `GET /echo/\xff\xfe HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}`, status: 400 },
  { name: "tab in the target", request: `GET /a\tb HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}`, status: 400 },
  { name: "origin form without a leading slash", request: `GET echo HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}`, status: 400 },
  { name: "two different Content-Length", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: 3${CRLF}Content-Length: 4${CRLF}${CRLF}abcd`, status: 400 },
  { name: "two equal Content-Length", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: 3${CRLF}Content-Length: 3${CRLF}${CRLF}abc`, status: 400 },
  { name: "Content-Length and Transfer-Encoding", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: 3${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}3${CRLF}abc${CRLF}0${CRLF}${CRLF}`, status: 400 },
  { name: "chunked not last in Transfer-Encoding", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Transfer-Encoding: chunked, gzip${CRLF}${CRLF}`, status: 400 },
  { name: "negative Content-Length", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: -1${CRLF}${CRLF}`, status: 400 },
  { name: "non-numeric Content-Length", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: abc${CRLF}${CRLF}`, status: 400 },
  { name: "signed Content-Length", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: +3${CRLF}${CRLF}abc`, status: 400 },
  { name: "NUL in a header value", request: `GET / HTTP/1.1${CRLF}Host: x${CRLF}X-A: a\x00b${CRLF}${CRLF}`, status: 400 },
  { name: "bare CR in a header value", request: `GET / HTTP/1.1${CRLF}Host: x${CRLF}X-A: a\rb${CRLF}${CRLF}`, status: 400 },
  { name: "LF-only line endings", request: "GET / HTTP/1.1\nHost: x\n\n", status: 400 },
  { name: "space before the colon", request: `GET / HTTP/1.1${CRLF}Host : x${CRLF}${CRLF}`, status: 400 },
  { name: "obsolete line folding", request: `GET / HTTP/1.1${CRLF}Host: x${CRLF}X-A: a${CRLF} b${CRLF}${CRLF}`, status: 400 },
  { name: "header line without a colon", request: `GET / HTTP/1.1${CRLF}Host: x${CRLF}NoColon${CRLF}${CRLF}`, status: 400 },
  { name: "HTTP/1.1 without Host", request: `GET / HTTP/1.1${CRLF}${CRLF}`, status: 400 },
  { name: "two Host headers", request: `GET / HTTP/1.1${CRLF}Host: a${CRLF}Host: b${CRLF}${CRLF}`, status: 400 },
  { name: "one header over maxHeaderSize", request: `GET / HTTP/1.1${CRLF}Host: x${CRLF}X-Big: ${"a".repeat(20_000)}${CRLF}${CRLF}`, status: 431 },
  { name: "thousands of small headers", request: `GET / HTTP/1.1${CRLF}Host: x${CRLF}${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v${CRLF}`).join("")}${CRLF}`, status: 431 },
];

t.test("requests the parser refuses get 400 or 431, reach no handler, and the server keeps serving", async (t) => {
  const port = await serve(t, { maxHeaderSize: 16 * 1024 });
  for (const c of PARSER_400) {
    const before = handled;
    const ex = await exchange(port, c.request);
    answeredAndClosed(t, ex, c.status, c.name);
    t.equal(handled, before, `${c.name}: no handler ran`);
    await stillServes(t, port, c.name);
  }
});

// The head parses, so the request reaches typhoon; the error is in what the path or query says.
const APP_400: Case[] = [
  { name: "invalid percent-encoding in a path group", request: "/echo/%zz", status: 400 },
  { name: "percent-encoded invalid UTF-8 in a path group", request: "/echo/%ff%fe", status: 400 },
  { name: "overlong UTF-8 in a path group", request: "/echo/%c0%af", status: 400 },
  { name: "lone surrogate in a path group", request: "/echo/%ed%a0%80", status: 400 },
  { name: "percent-encoded invalid UTF-8 in the query", request: "/echo/a?q=%ff", status: 400 },
  { name: "absolute-form target with a bad authority", request: "http://[::1", status: 400 },
];

t.test("invalid percent-encoding or UTF-8 in paths and queries is a 400 page, not a 500", async (t) => {
  const port = await serve(t);
  for (const c of APP_400) {
    const ex = await exchange(port, `GET ${c.request} HTTP/1.1${CRLF}Host: x${CRLF}Connection: close${CRLF}${CRLF}`);
    answeredAndClosed(t, ex, c.status, c.name);
    t.match(ex.responses[0]?.body.toString() ?? "", /400: Bad Request/, `${c.name}: the error page`);
    await stillServes(t, port, c.name);
  }
  const ok = await exchange(port, `GET /echo/%C3%A9t%C3%A9?q=caf%C3%A9+noir HTTP/1.1${CRLF}Host: x${CRLF}Connection: close${CRLF}${CRLF}`);
  t.equal(ok.responses[0]?.body.toString(), "value=été q=café noir", "valid UTF-8 decodes");
  // A % that starts no escape stays as it is (Python's unquote, so Tornado): not a 400.
  for (const [query, value] of [["q=%zz", "%zz"], ["q=%e", "%e"], ["q=50%", "50%"]]) {
    const lenient = await exchange(port, `GET /echo/a?${query} HTTP/1.1${CRLF}Host: x${CRLF}Connection: close${CRLF}${CRLF}`);
    t.equal(lenient.responses[0]?.body.toString(), `value=a q=${value}`, `a stray % in ${query} is kept`);
  }
});

t.test("a 400 from the app on a keep-alive connection leaves the connection usable", async (t) => {
  const port = await serve(t);
  const ex = await exchange(port, `GET /echo/a?q=%ff HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}GET / HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}`, { responses: 2 });
  t.same(ex.responses.map((r) => r.status), [400, 200]);
});

// Errors inside a chunked or undelimited body are found after the handler started reading it:
// the request is answered 400 (nothing of its response was sent yet) and the connection closed.
const BODY_ERRORS: Case[] = [
  { name: "chunk size that is not hex", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}zz${CRLF}abc${CRLF}0${CRLF}${CRLF}`, status: 0 },
  { name: "chunk size that overflows", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}ffffffffffffffffff${CRLF}abc${CRLF}0${CRLF}${CRLF}`, status: 0 },
  { name: "bare CR after a chunk size", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}3\rabc${CRLF}0${CRLF}${CRLF}`, status: 0 },
];

// RFC 9112 §6.1: a transfer coding other than chunked is not implemented: 501 before any handler.
const UNKNOWN_CODINGS: Case[] = [
  { name: "Transfer-Encoding without chunked", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Transfer-Encoding: gzip${CRLF}${CRLF}abc`, status: 501 },
  { name: "unknown transfer coding", request: `POST / HTTP/1.1${CRLF}Host: x${CRLF}Transfer-Encoding: xchunked${CRLF}${CRLF}abc`, status: 501 },
];

t.test("a transfer coding other than chunked is a 501 and a close; no handler runs", async (t) => {
  const port = await serve(t);
  for (const c of UNKNOWN_CODINGS) {
    const before = handled;
    const ex = await exchange(port, c.request);
    answeredAndClosed(t, ex, c.status, c.name);
    t.equal(handled, before, `${c.name}: post() never ran`);
    await stillServes(t, port, c.name);
  }
});

t.test("a broken chunked body is a 400 and a close, the handler is released, and the server keeps serving", async (t) => {
  const lines = captureLog(t);
  const port = await serve(t);
  for (const c of BODY_ERRORS) {
    const before = handled;
    const ex = await exchange(port, c.request);
    answeredAndClosed(t, ex, 400, c.name);
    t.equal(ex.rest, "", `${c.name}: nothing half-written`);
    t.equal(handled, before, `${c.name}: post() never ran`);
    await stillServes(t, port, c.name);
  }
  // Each handler that was waiting for its body gives up when the connection closes (about a
  // second after the 400: the server lingers so the client can read it).
  const released = (): number => lines.filter((l) => l.message.includes("closed the connection while sending the body")).length;
  await waitFor(() => released() >= BODY_ERRORS.length, { timeout: 15_000, what: "every waiting handler to be released" }).catch(() => undefined);
  t.equal(released(), BODY_ERRORS.length, "every waiting handler was released");
  const ok = await exchange(port, `POST / HTTP/1.1${CRLF}Host: x${CRLF}Transfer-Encoding: chunked${CRLF}Connection: close${CRLF}${CRLF}3;ext=1${CRLF}abc${CRLF}2${CRLF}de${CRLF}0${CRLF}${CRLF}`);
  t.equal(ok.responses[0]?.body.toString(), "got 5", "a valid chunked body with an extension is read whole");
});

t.test("a declared body over maxBodySize is a 413 sent before the body, which is never read", async (t) => {
  const port = await serve(t, { maxBodySize: 1024 });
  const before = handled;
  const socket = await open(port);
  const result = collect(socket, { timeout: 3000 });
  // Only the head: the 413 must come without the server waiting for (or buffering) 50 MB.
  socket.write(`POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: ${50 * 1024 * 1024}${CRLF}${CRLF}`);
  const ex = await result;
  answeredAndClosed(t, ex, 413, "declared 50 MB");
  t.equal(handled, before, "post() never ran");
  await stillServes(t, port, "413");
});

t.test("a chunked body growing past maxBodySize is cut at the limit with 413", async (t) => {
  const port = await serve(t, { maxBodySize: 1024 });
  const before = handled;
  const socket = await open(port);
  const result = collect(socket, { timeout: 3000 });
  socket.write(`POST / HTTP/1.1${CRLF}Host: x${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}`);
  const chunk = `400${CRLF}${"x".repeat(1024)}${CRLF}`;
  // Keep sending after the limit: the server must answer and close, not keep reading.
  for (let i = 0; i < 64 && !socket.destroyed; i++) {
    socket.write(chunk);
    await new Promise((r) => setImmediate(r));
  }
  const ex = await result;
  t.equal(ex.responses[0]?.status, 413, "413");
  t.ok(ex.closed, "connection closed");
  t.equal(handled, before, "post() never ran");
  await stillServes(t, port, "chunked 413");
});

t.test("Expect: 100-continue gets 100 before the body and the final answer after it", async (t) => {
  const port = await serve(t);
  const socket = await open(port);
  t.teardown(() => socket.destroy());
  socket.write(`POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: 5${CRLF}Expect: 100-continue${CRLF}Connection: close${CRLF}${CRLF}`);
  const interim = await new Promise<string>((resolve) => socket.once("data", (d: Buffer) => resolve(d.toString("latin1"))));
  t.match(interim, /^HTTP\/1\.1 100 Continue\r\n\r\n$/, "100 Continue, and nothing else yet");
  const rest = collect(socket);
  socket.write("hello");
  const ex = await rest;
  t.equal(ex.responses[0]?.status, 200);
  t.equal(ex.responses[0]?.body.toString(), "got 5");
});

t.test("pipelined requests are answered in order on one connection", async (t) => {
  const port = await serve(t);
  const ex = await exchange(port,
    `GET / HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}GET /echo/b HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}` +
    `POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: 2${CRLF}${CRLF}ok` +
    `GET /echo/c HTTP/1.1${CRLF}Host: x${CRLF}Connection: close${CRLF}${CRLF}`);
  t.same(ex.responses.map((r) => r.body.toString()), ["main", "value=b q=none", "got 2", "value=c q=none"]);
  t.ok(ex.closed, "closed after the one that asked");
});

t.test("a bad request pipelined after good ones: whole answers to the good ones, in order, then a close", async (t) => {
  const port = await serve(t);
  const ex = await exchange(port, `GET / HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}GET /echo/2 HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}BROKEN${CRLF}${CRLF}`);
  const bodies = ex.responses.map((r) => `${r.status} ${r.body.toString()}`);
  // The 400 may only come after both good answers: earlier, a client would take it for theirs.
  const expected = ["200 main", "200 value=2 q=none", "400 "];
  t.same(bodies, expected.slice(0, bodies.length), `a prefix of the in-order answers: ${bodies.join(" | ")}`);
  t.equal(bodies[0], "200 main", "the first good request is answered whole");
  // Tornado reads one request at a time, so it answers both good ones before it meets the bad
  // one. node:http has parsed all three by then: typhoon lets the queued answers go out first.
  t.same(bodies, expected, "both good requests are answered, then the 400");
  t.ok(ex.closed && !ex.timedOut, "closed");
  t.equal(ex.rest, "", "no half-written response");
  await stillServes(t, port, "pipelined garbage");
});

t.test("Expect other than 100-continue is a 417 and the connection stays usable", async (t) => {
  const port = await serve(t);
  const ex = await exchange(port, `POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: 3${CRLF}Expect: teapot${CRLF}${CRLF}abc` +
    `GET / HTTP/1.1${CRLF}Host: x${CRLF}Connection: close${CRLF}${CRLF}`);
  t.same(ex.responses.map((r) => r.status), [417, 200]);
});

t.test("HTTP/1.0 closes after the response unless it asks for keep-alive", async (t) => {
  const port = await serve(t);
  const plain = await exchange(port, `GET / HTTP/1.0${CRLF}${CRLF}`);
  answeredAndClosed(t, plain, 200, "HTTP/1.0");
  t.equal(plain.responses[0]?.body.toString(), "main");
  const kept = await exchange(port, `GET / HTTP/1.0${CRLF}Connection: keep-alive${CRLF}${CRLF}GET /echo/x HTTP/1.0${CRLF}${CRLF}`);
  t.same(kept.responses.map((r) => r.status), [200, 200], "a second request on the kept connection");
  t.match(kept.responses[0]?.headers["connection"] ?? "", /keep-alive/i);
  t.ok(kept.closed, "closed after the second, which did not ask");
});

t.test("a connection that sends a partial head and goes away leaves nothing behind", async (t) => {
  const lines = captureLog(t);
  const port = await serve(t);
  for (const partial of ["GET / HT", `GET / HTTP/1.1${CRLF}Host: x`, `POST / HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: 10${CRLF}${CRLF}abc`]) {
    const socket = await open(port);
    socket.resume();
    socket.end(partial);
    await new Promise((r) => socket.once("close", r));
    await stillServes(t, port, JSON.stringify(partial));
  }
  t.notOk(lines.some((l) => l.level === "error"), "nothing logged as an error");
});

t.test("a gzip body that inflates past maxBodySize and then turns to garbage is a 413, never a crash", async (t) => {
  captureLog(t);
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => { uncaught.push(err); };
  // tap turns an uncaught exception into a failure of its own; listening here names it.
  process.prependListener("uncaughtException", onUncaught);
  t.teardown(() => { process.off("uncaughtException", onUncaught); });
  const port = await serve(t, { maxBodySize: 1024, decompressRequest: true });
  for (const path of ["/", "/stream"]) {
    // 1 MiB of zeros deflates to about 1 KiB: the limit is crossed while input is still queued
    // in the decompressor, and what follows the valid part is not gzip at all.
    const body = Buffer.concat([gzipSync(Buffer.alloc(1 << 20)).subarray(0, 600), Buffer.alloc(400, 0x41)]);
    const ex = await exchange(port, [`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: ${body.length}\r\n\r\n`, body]);
    t.ok([400, 413].includes(ex.responses[0]?.status ?? 0), `${path}: ${ex.responses[0]?.status}`);
    await new Promise((r) => setTimeout(r, 50));
    await stillServes(t, port, `${path} gzip bomb`);
  }
  t.same(uncaught, [], "no uncaught exception");
});
