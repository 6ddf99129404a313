// HTTPServer's limits and proxy handling over real sockets: maxBodySize (413 before the body is
// read, and for chunked bodies), bodyTimeout (408), headersTimeout (slow head cut with 408),
// xheaders with trustedDownstream, noKeepAlive, idleConnectionTimeout, decompressRequest, and
// stop() draining with Connection: close. After every bad request a good one is served.
import t from "tap";
import { gzipSync, deflateSync } from "node:zlib";
import { Application, ErrorCode, HTTPServer, RequestHandler, TyphoonError, isDraining, withServer } from "../../core/index.ts";
import { collect, exchange, getOnce, open } from "../helpers/raw-http.ts";
import { captureLog } from "../helpers/log.ts";
import { TEST_CERT, TEST_KEY } from "../helpers/tls.ts";
import { request as httpsRequest } from "node:https";

let bodyHandlerRuns = 0;
class Body extends RequestHandler {
  post(): void {
    bodyHandlerRuns++;
    this.write({ length: this.request.body.length, text: this.request.body.toString("utf8").slice(0, 40) });
  }
}

class Who extends RequestHandler {
  get(): void { this.write({ ip: this.request.remoteIp, protocol: this.request.protocol }); }
}

class Hello extends RequestHandler {
  get(): void { this.write("hello"); }
}

let release: (() => void) | null = null;
class Held extends RequestHandler {
  async get(): Promise<void> {
    await new Promise<void>((resolve) => { release = resolve; });
    this.write("released");
  }
}

const app = new Application([["/body", Body], ["/who", Who], ["/", Hello], ["/held", Held], ["/g/(.*)", Hello]]);
const port = (base: string): number => Number(new URL(base).port);
const post = (length: number | string, extra = ""): string => `POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n${extra}\r\n`;

async function until(check: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return check();
}

t.test("a Content-Length over maxBodySize → 413 at once, without waiting for the body; the server keeps serving", async (t) => {
  captureLog(t);
  await withServer(app, async (base) => {
    const before = bodyHandlerRuns;
    // Only the head is sent: the 413 must come back though the 10 GB body never does.
    const ex = await exchange(port(base), post(10 * 1024 ** 3), { responses: 1, timeout: 2000 });
    t.equal(ex.timedOut, false, "answered without the body");
    t.equal(ex.responses[0]?.status, 413);
    t.equal(ex.responses[0]?.headers["connection"], "close", "the unread body cannot be reused as a request");
    t.equal(bodyHandlerRuns, before, "the handler never ran");
    const ok = await exchange(port(base), [post(5), "hello"], { responses: 1 });
    t.same(JSON.parse(ok.responses[0]?.body.toString() ?? "null"), { length: 5, text: "hello" }, "a body under the limit is read");
    t.equal((await getOnce(port(base)))?.status, 200);
  }, { maxBodySize: 1024 });
});

t.test("the default maxBodySize is 100 MiB: one byte over is a 413 without reading; exactly 100 MiB gets 100 Continue", async (t) => {
  captureLog(t);
  const MiB100 = 100 * 1024 * 1024;
  await withServer(app, async (base) => {
    const before = bodyHandlerRuns;
    // Only heads are sent: the limit is judged on the declared length.
    const over = await exchange(port(base), post(MiB100 + 1), { responses: 1, timeout: 10_000 });
    t.equal(over.responses[0]?.status, 413, "100 MiB + 1 declared: 413");
    t.equal(over.responses[0]?.headers["connection"], "close");
    t.equal(bodyHandlerRuns, before, "the handler never ran");
    const socket = await open(port(base));
    t.teardown(() => socket.destroy());
    const first = new Promise<string>((resolve) => socket.once("data", (d: Buffer) => resolve(d.toString("latin1"))));
    socket.write(post(MiB100, "Expect: 100-continue\r\n"));
    t.match(await first, /^HTTP\/1\.1 100 Continue\r\n/, "exactly 100 MiB declared: the server asks for the body");
    socket.destroy();
  });
});

t.test("Expect: 100-continue: no 100 for a body over maxBodySize, only the 413; 100 then 200 under it", async (t) => {
  captureLog(t);
  await withServer(app, async (base) => {
    const big = await exchange(port(base), post(5000, "Expect: 100-continue\r\n"), { responses: 1, timeout: 2000 });
    t.match(big.raw, /^HTTP\/1\.1 413 /, "the first thing sent is the 413");
    t.notMatch(big.raw, /100 Continue/);
    const small = await exchange(port(base), [post(5, "Expect: 100-continue\r\nConnection: close\r\n"), "hello"], { timeout: 2000, gap: 50 });
    t.match(small.raw, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    t.match(small.raw, /"length":5/);
  }, { maxBodySize: 1024 });
});

t.test("a chunked body growing over maxBodySize → 413 and the connection closes", async (t) => {
  captureLog(t);
  await withServer(app, async (base) => {
    const chunk = `400\r\n${"x".repeat(1024)}\r\n`;
    const ex = await exchange(port(base), [
      "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", chunk, chunk, chunk,
    ], { responses: 1, gap: 10 });
    t.equal(ex.responses[0]?.status, 413);
    t.equal(ex.responses[0]?.headers["connection"], "close");
    const small = await exchange(port(base), "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n", { responses: 1 });
    t.match(JSON.parse(small.responses[0]?.body.toString() ?? "null"), { length: 5 }, "a small chunked body is read");
  }, { maxBodySize: 2000 });
});

t.test("a body that stalls longer than bodyTimeout → 408, then the server keeps serving", async (t) => {
  captureLog(t);
  await withServer(app, async (base) => {
    const started = Date.now();
    const ex = await exchange(port(base), [post(100), "only part"], { responses: 1, timeout: 15_000 });
    t.equal(ex.responses[0]?.status, 408);
    // The 408 is the timeout's doing; the bound only rules out "much later" (load delays timers).
    t.ok(Date.now() - started < 10_000, `within a bounded time of the stall (${Date.now() - started} ms)`);
    t.equal(ex.responses[0]?.headers["connection"], "close");
    t.equal((await getOnce(port(base)))?.status, 200);
  }, { bodyTimeout: 150 });
});

t.test("a request head sent too slowly is answered 408 and cut (headersTimeout)", async (t) => {
  captureLog(t);
  await withServer(app, async (base) => {
    const socket = await open(port(base));
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n");
    const result = await collect(socket, { timeout: 15_000 });
    t.equal(result.timedOut, false, "the server acted before the client gave up");
    t.ok(result.closed, "the connection is closed");
    t.match(result.raw, /^HTTP\/1\.1 408 /);
    t.equal((await getOnce(port(base)))?.status, 200);
  }, { headersTimeout: 300 });
});

t.test("an oversize request head → 431, then the server keeps serving", async (t) => {
  await withServer(app, async (base) => {
    const ex = await exchange(port(base), `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(4000)}\r\n\r\n`, { timeout: 2000 });
    t.match(ex.raw, /^HTTP\/1\.1 431 /);
    t.equal((await getOnce(port(base)))?.status, 200);
  }, { maxHeaderSize: 1024 });
});

t.test("a malformed request line → 400 and the server keeps serving", async (t) => {
  await withServer(app, async (base) => {
    const ex = await exchange(port(base), "THIS IS NOT HTTP\r\n\r\n", { timeout: 2000 });
    t.match(ex.raw, /^HTTP\/1\.1 400 /);
    t.ok(ex.closed);
    t.equal((await getOnce(port(base)))?.status, 200);
  });
});

t.test("xheaders: X-Real-Ip, X-Forwarded-For (skipping trustedDownstream), X-Forwarded-Proto / X-Scheme", async (t) => {
  const ask = async (p: number, headers: string): Promise<unknown> => {
    const ex = await exchange(p, `GET /who HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`, { responses: 1 });
    return JSON.parse(ex.responses[0]?.body.toString() ?? "null");
  };
  await withServer(app, async (base) => {
    const p = port(base);
    t.same(await ask(p, "X-Real-Ip: 203.0.113.9\r\n"), { ip: "203.0.113.9", protocol: "http" });
    t.same(await ask(p, "X-Forwarded-For: 198.51.100.1, 10.0.0.2, 10.0.0.1\r\n"), { ip: "198.51.100.1", protocol: "http" }, "trusted hops skipped");
    t.same(await ask(p, "X-Forwarded-For: 198.51.100.1, 192.0.2.77\r\n"), { ip: "192.0.2.77", protocol: "http" }, "the last untrusted hop");
    t.same(await ask(p, "X-Forwarded-For: 198.51.100.1\r\nX-Real-Ip: 203.0.113.5\r\n"), { ip: "203.0.113.5", protocol: "http" }, "X-Real-Ip wins");
    t.same(await ask(p, "X-Real-Ip: not-an-ip\r\n"), { ip: "127.0.0.1", protocol: "http" }, "an invalid address is ignored");
    t.same(await ask(p, "X-Forwarded-Proto: https\r\n"), { ip: "127.0.0.1", protocol: "https" });
    t.same(await ask(p, "X-Scheme: https\r\n"), { ip: "127.0.0.1", protocol: "https" });
    t.same(await ask(p, "X-Forwarded-Proto: http, https\r\n"), { ip: "127.0.0.1", protocol: "https" }, "the last of a list");
    t.same(await ask(p, "X-Forwarded-Proto: gopher\r\n"), { ip: "127.0.0.1", protocol: "http" }, "an unknown scheme is ignored");
    t.same(await ask(p, "X-Real-Ip: 2001:db8::1\r\n"), { ip: "2001:db8::1", protocol: "http" }, "IPv6");
  }, { xheaders: true, trustedDownstream: ["10.0.0.1", "10.0.0.2"] });
  await withServer(app, async (base) => {
    t.same(await ask(port(base), "X-Real-Ip: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"), { ip: "127.0.0.1", protocol: "http" }, "ignored without xheaders");
  });
});

t.test("keep-alive by default; noKeepAlive closes every connection after its response", async (t) => {
  await withServer(app, async (base) => {
    const ex = await exchange(port(base), "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", { responses: 2 });
    t.equal(ex.responses.length, 2, "two responses on one connection");
    t.equal(ex.responses[0]?.headers["connection"], "keep-alive");
  });
  await withServer(app, async (base) => {
    const ex = await exchange(port(base), "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", { timeout: 2000 });
    t.equal(ex.responses.length, 1, "only the first request is answered");
    t.equal(ex.responses[0]?.headers["connection"], "close");
    t.ok(ex.closed, "then the server closes");
    const missing = await exchange(port(base), "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", { timeout: 2000 });
    t.equal(missing.responses[0]?.status, 404);
    t.ok(missing.closed, "a 404 closes too");
    const bad = await exchange(port(base), "GET /g/%FF HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", { timeout: 2000 });
    t.equal(bad.responses.length, 1, "an early 400 (undecodable path group) closes too");
    t.equal(bad.responses[0]?.headers["connection"], "close");
  }, { noKeepAlive: true });
});

t.test("an idle keep-alive connection is closed after idleConnectionTimeout", async (t) => {
  await withServer(app, async (base) => {
    const socket = await open(port(base));
    const started = Date.now();
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const result = await collect(socket, { timeout: 15_000 });
    t.equal(result.responses.length, 1);
    t.ok(result.closed, "the server closed the idle connection");
    t.ok(Date.now() - started >= 150, "not before the timeout");
    t.equal(result.responses[0]?.headers["keep-alive"], undefined, "no deprecated Keep-Alive: timeout=N header");
  }, { idleConnectionTimeout: 200 });
});

t.test("decompressRequest: gzip and deflate bodies are inflated; corrupt → 400; off → as sent", async (t) => {
  captureLog(t);
  await withServer(app, async (base) => {
    for (const [encoding, data] of [["gzip", gzipSync("compressed hello")], ["deflate", deflateSync("compressed hello")]] as const) {
      const res = await fetch(`${base}/body`, { method: "POST", body: data, headers: { "content-encoding": encoding } });
      t.same(await res.json(), { length: 16, text: "compressed hello" }, encoding);
    }
    const corrupt = await fetch(`${base}/body`, { method: "POST", body: Buffer.from("not gzip at all"), headers: { "content-encoding": "gzip" } });
    t.equal(corrupt.status, 400);
    await corrupt.arrayBuffer();
    const unknown = await fetch(`${base}/body`, { method: "POST", body: "x", headers: { "content-encoding": "br-unknown" } });
    t.equal(unknown.status, 415);
    await unknown.arrayBuffer();
    const bomb = await fetch(`${base}/body`, { method: "POST", body: gzipSync(Buffer.alloc(100_000)), headers: { "content-encoding": "gzip" } });
    t.equal(bomb.status, 413, "maxBodySize applies after decompression");
    await bomb.arrayBuffer();
    t.equal((await fetch(`${base}/`)).status, 200);
  }, { decompressRequest: true, maxBodySize: 10_000 });
  await withServer(app, async (base) => {
    const data = gzipSync("compressed hello");
    const res = await fetch(`${base}/body`, { method: "POST", body: data, headers: { "content-encoding": "gzip" } });
    t.match(await res.json(), { length: data.length }, "left compressed when off");
  });
});

t.test("stop() lets the in-flight request finish with Connection: close, refuses new connections, then resolves", async (t) => {
  const server = new HTTPServer(app);
  await server.listen(0, "127.0.0.1");
  const p = server.address()!.port;
  release = null;
  const inflight = exchange(p, "GET /held HTTP/1.1\r\nHost: x\r\n\r\n", { responses: 1, timeout: 15_000 });
  t.ok(await until(() => release !== null), "the request reached the handler");
  let stopped = false;
  const stopping = server.stop(2000).then(() => { stopped = true; });
  t.equal(isDraining(), true, "the server drains from the moment stop() is called");
  await new Promise((r) => setTimeout(r, 20));
  t.equal(stopped, false, "stop() waits for the in-flight request");
  await t.rejects(open(p), "new connections are refused");
  release!();
  const { responses } = await inflight;
  t.equal(responses[0]?.body.toString(), "released");
  t.equal(responses[0]?.headers["connection"], "close");
  await stopping;
  t.ok(stopped);
});

t.test("stop() cuts connections still open after its timeout", async (t) => {
  const server = new HTTPServer(app);
  await server.listen(0, "127.0.0.1");
  release = null;
  const inflight = exchange(server.address()!.port, "GET /held HTTP/1.1\r\nHost: x\r\n\r\n", { timeout: 30_000 });
  t.ok(await until(() => release !== null));
  const started = Date.now();
  await server.stop(100);
  // The held request never ends by itself: without the cut, stop() would never resolve.
  t.ok(Date.now() - started < 10_000, `resolved soon after the timeout (${Date.now() - started} ms)`);
  const ex = await inflight;
  t.ok(ex.closed, "the held connection was cut");
  t.equal(ex.responses.length, 0);
  release!();
});

t.test("invalid options and ports throw E_SERVER_OPTION (limits, ports) or E_SERVER_STATE (out of order); address() is null before listen", async (t) => {
  const err = t.throws(() => new HTTPServer(app, { maxBodySize: -1 })) as TyphoonError;
  t.equal(err.code, ErrorCode.SERVER_OPTION);
  t.throws(() => new HTTPServer(app, { bodyTimeout: Number.NaN }));
  const server = new HTTPServer(app);
  t.equal(server.address(), null);
  t.equal(server.httpServer, null);
  await t.rejects(server.listen(70000), { code: ErrorCode.SERVER_OPTION });
  t.throws(() => server.bind(-1), { code: ErrorCode.SERVER_OPTION });
  await t.rejects(server.start(1), { code: ErrorCode.SERVER_STATE }, "start() before bind() rejects, as listen() does");
  await server.stop();
  const twice = new HTTPServer(app);
  await twice.listen(0, "127.0.0.1");
  t.teardown(() => twice.stop(0));
  await t.rejects(twice.listen(0, "127.0.0.1"), { code: ErrorCode.SERVER_STATE }, "listening twice");
  const taken = new HTTPServer(app);
  await t.rejects(taken.listen(twice.address()!.port, "127.0.0.1"), { code: "EADDRINUSE" });
});

t.test("HTTPServer serves a plain (req, res) listener too", async (t) => {
  await withServer((_req, res) => { res.end("plain listener"); }, async (base) => {
    t.equal(await (await fetch(base)).text(), "plain listener");
  });
});

t.test("ssl: the server speaks HTTPS and request.protocol is https", async (t) => {
  const server = new HTTPServer(app, { ssl: { key: TEST_KEY, cert: TEST_CERT } });
  await server.listen(0, "127.0.0.1");
  t.teardown(() => { server.closeAllConnections(); return server.stop(0); });
  const body = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port: server.address()!.port, path: "/who", ca: TEST_CERT, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString()));
    });
    req.on("error", reject);
    req.end();
  });
  t.same(JSON.parse(body), { ip: "127.0.0.1", protocol: "https" });
});
