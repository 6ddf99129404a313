// Cases ported from Tornado's tornado/test/httpserver_test.py, each named after the Tornado test
// it comes from, plus the body-parsing behaviour of Tornado 6.2 (the Debian reference) that a
// migrating app relies on: lenient form and JSON bodies, h2c upgrade offers served as HTTP/1.1,
// Host and Transfer-Encoding checks, idle connections, keep-alive without a Keep-Alive header.
import t from "tap";
import { Application, RequestHandler } from "../../core/index.ts";
import { collect, exchange, open } from "../helpers/raw-http.ts";
import { expectLog, fetch, serve } from "../helpers/tornado.ts";

class EchoHandler extends RequestHandler {
  get(): void { this.write(argumentsOf(this)); }
  post(): void { this.write(argumentsOf(this)); }
}

function argumentsOf(h: RequestHandler): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const name of Object.keys(h.request.arguments)) out[name] = h.getArguments(name);
  return out;
}

class PostEchoHandler extends RequestHandler {
  post(): void { this.write({ echo: this.getArgument("data") }); }
}

class PostEchoGBKHandler extends PostEchoHandler {
  override decodeArgument(value: Buffer | string): string {
    if (typeof value === "string") return value;
    return new TextDecoder("gbk", { fatal: true }).decode(value);
  }
}

class BodyHandler extends RequestHandler {
  post(): void {
    this.write({ length: this.request.body.length, hex: this.request.body.toString("hex"), args: argumentsOf(this) });
  }
}

class JsonHandler extends RequestHandler {
  post(): void { this.write({ parsed: this.getJsonBody() }); }
}

class Hello extends RequestHandler {
  get(): void { this.finish("Hello world"); }
  post(): void { this.finish("Hello world"); }
}

function app(): Application {
  return new Application([
    ["/echo", EchoHandler], ["//doubleslash", EchoHandler], ["/post_utf8", PostEchoHandler], ["/post_gbk", PostEchoGBKHandler],
    ["/body", BodyHandler], ["/json", JsonHandler], ["/", Hello],
  ]);
}

const FORM = { "content-type": "application/x-www-form-urlencoded" };

// ---- HTTPServerTest ---------------------------------------------------------------------------

t.test("HTTPServerTest.test_query_string_encoding / test_empty_query_string / test_empty_post_parameters", async (t) => {
  const served = await serve(t, app());
  t.same(JSON.parse((await fetch(served, "/echo?foo=%C3%A9")).text), { foo: ["\u00e9"] });
  t.same(JSON.parse((await fetch(served, "/echo?foo=&foo=")).text), { foo: ["", ""] });
  t.same(JSON.parse((await fetch(served, "/echo", { method: "POST", body: "foo=&bar=", headers: FORM })).text), { foo: [""], bar: [""] });
});

t.test("HTTPServerTest.test_double_slash: //doubleslash is a path, not a protocol-relative URL", async (t) => {
  const served = await serve(t, app());
  const res = await fetch(served, "//doubleslash");
  t.equal(res.code, 200);
  t.same(JSON.parse(res.text), {});
});

t.test("HTTPServerTest.test_post_encodings: UTF-8 by default, GBK through decodeArgument, quoted or raw", async (t) => {
  const served = await serve(t, app());
  const text = "chinese: \u5f20\u4e09";
  const encoders: Record<string, (s: string) => Buffer> = {
    utf8: (s) => Buffer.from(s, "utf8"),
    // "张三" in GBK; TextEncoder only speaks UTF-8.
    gbk: (s) => Buffer.concat([Buffer.from(s.slice(0, 9), "latin1"), Buffer.from([0xd5, 0xc5, 0xc8, 0xfd])]),
  };
  for (const enc of ["utf8", "gbk"]) {
    for (const quote of [true, false]) {
      const raw = encoders[enc]!(text);
      const body = quote ? Buffer.from(`data=${[...raw].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")}`) : Buffer.concat([Buffer.from("data="), raw]);
      const res = await fetch(served, `/post_${enc}`, { method: "POST", headers: FORM, body });
      t.equal(res.code, 200, `${enc} quote=${quote}`);
      t.same(JSON.parse(res.text), { echo: text }, `${enc} quote=${quote}`);
    }
  }
});

// ---- Lenient bodies (Tornado 6.2's parse_body_arguments) ----------------------------------------

t.test("parse_body_arguments: binary data under the form content-type (curl --data-binary) is served, raw body kept, warning logged", async (t) => {
  const lines = expectLog(t);
  const served = await serve(t, app());
  const binary = Buffer.from([0x61, 0xff, 0x00, 0x3d, 0xfe, 0x62]);
  const res = await fetch(served, "/body", { method: "POST", headers: FORM, body: binary });
  t.equal(res.code, 200);
  const data = JSON.parse(res.text) as { length: number; hex: string };
  t.equal(data.length, 6);
  t.equal(data.hex, binary.toString("hex"));
  t.match(lines.join("\n"), /^warn: .*form/m);
});

t.test("parse_body_arguments: a stray % (curl -d 'discount=50%') is kept as it is", async (t) => {
  expectLog(t);
  const served = await serve(t, app());
  const res = await fetch(served, "/echo", { method: "POST", headers: FORM, body: "discount=50%&a=%zz&b=%41" });
  t.equal(res.code, 200);
  t.same(JSON.parse(res.text), { discount: ["50%"], a: ["%zz"], b: ["A"] });
  t.same(JSON.parse((await fetch(served, "/echo?discount=50%")).text), { discount: ["50%"] });
});

t.test("parse_body_arguments: invalid JSON under application/json is served with its raw body; getJsonBody() rejects", async (t) => {
  const lines = expectLog(t);
  const served = await serve(t, app());
  const json = { "content-type": "application/json" };
  const res = await fetch(served, "/body", { method: "POST", headers: json, body: "{bad" });
  t.equal(res.code, 200);
  t.equal((JSON.parse(res.text) as { length: number }).length, 4);
  t.match(lines.join("\n"), /^warn: .*JSON/m);
  t.equal((await fetch(served, "/json", { method: "POST", headers: json, body: "{bad" })).code, 400);
  t.same(JSON.parse((await fetch(served, "/json", { method: "POST", headers: json, body: '{"a":1}' })).text), { parsed: { a: 1 } });
});

// ---- h2c upgrade offers -----------------------------------------------------------------------

t.test("h2c upgrade offer with a body (curl --http2 -d a=1) is ignored: served as HTTP/1.1, connection still usable", async (t) => {
  const lines = expectLog(t);
  const served = await serve(t, app());
  const offer = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    + "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=1";
  const result = await exchange(served.port, [offer, "GET /echo?b=2 HTTP/1.1\r\nHost: x\r\n\r\n"], { responses: 2, gap: 50 });
  t.equal(result.responses.length, 2, "both requests answered on the one connection");
  t.equal(result.responses[0]?.status, 200);
  t.same(JSON.parse(result.responses[0]?.body.toString() ?? "null"), { a: ["1"] });
  t.equal(result.responses[0]?.headers["upgrade"], undefined, "no switch to h2c");
  t.same(JSON.parse(result.responses[1]?.body.toString() ?? "null"), { b: ["2"] });
  t.equal(lines.filter((l) => l.startsWith("error")).length, 0);
  // A chunked body under an offer is served too.
  const chunked = await exchange(served.port, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n"
    + "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nd=4\r\n0\r\n\r\n", { responses: 1 });
  t.same(JSON.parse(chunked.responses[0]?.body.toString() ?? "null"), { d: ["4"] });
  // Without a body too.
  const bare = await exchange(served.port, "GET /echo?c=3 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", { responses: 1 });
  t.same(JSON.parse(bare.responses[0]?.body.toString() ?? "null"), { c: ["3"] });
});

// ---- HTTPServerRawTest ------------------------------------------------------------------------

t.test("HTTPServerRawTest.test_invalid_host_header_with_whitespace: 400", async (t) => {
  expectLog(t);
  const served = await serve(t, app());
  for (const host of ["foo bar", "foo\tbar"]) {
    const { responses } = await exchange(served.port, `GET /echo HTTP/1.0\r\nHost: ${host}\r\n\r\n`, { responses: 1 });
    t.equal(responses[0]?.status, 400, JSON.stringify(host));
  }
});

t.test("HTTPServerRawTest.test_chunked_request_body / test_chunked_request_uppercase", async (t) => {
  const served = await serve(t, app());
  for (const te of ["chunked", "Chunked"]) {
    const { responses } = await exchange(served.port,
      `POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: ${te}\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n4\r\nfoo=\r\n3\r\nbar\r\n0\r\n\r\n`,
      { responses: 1 });
    t.same(JSON.parse(responses[0]?.body.toString() ?? "null"), { foo: ["bar"] }, te);
  }
});

t.test("HTTPServerRawTest.test_chunked_request_body_unsupported_transfer_encoding: 501 (RFC 9112 §6.1), the handler never runs", async (t) => {
  expectLog(t);
  let ran = 0;
  class Counting extends RequestHandler {
    post(): void { ran++; this.write("ran"); }
  }
  const served = await serve(t, new Application([["/echo", Counting]]));
  const result = await exchange(served.port, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
  t.equal(result.responses[0]?.status, 501);
  t.equal(result.closed, true, "the unread body is not taken for a request");
  t.equal(ran, 0);
});

t.test("HTTPServerRawTest.test_chunked_request_body_transfer_encoding_and_content_length / test_invalid_content_length: 400", async (t) => {
  expectLog(t);
  const served = await serve(t, app());
  const both = await exchange(served.port, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n");
  t.equal(both.responses[0]?.status, 400);
  for (const value of ["foo", "+10", "1_0"]) {
    const r = await exchange(served.port, `POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${value}\r\nConnection: close\r\n\r\n1234567890`);
    t.equal(r.responses[0]?.status, 400, value);
  }
});

t.test("HTTPServerRawTest.test_chunked_request_body_duplicate_header: 400", async (t) => {
  expectLog(t);
  const served = await serve(t, app());
  const { responses } = await exchange(served.port, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", { responses: 1 });
  t.equal(responses[0]?.status, 400);
});

t.test("HTTPConnectionTest.test_newlines: CRLF is served; bare LF is refused by node's parser (400, MIGRATING.md)", async (t) => {
  const served = await serve(t, app());
  const crlf = await exchange(served.port, "GET / HTTP/1.0\r\nContent-Length: 0\r\n\r\n", { responses: 1 });
  t.equal(crlf.responses[0]?.body.toString(), "Hello world");
  const lf = await exchange(served.port, "GET / HTTP/1.0\nContent-Length: 0\n\n", { responses: 1 });
  t.equal(lf.responses[0]?.status, 400);
});

t.test("HTTPServerRawTest.test_invalid_methods: FOO,BAR is a 400 (FOO too: node's parser, MIGRATING.md)", async (t) => {
  expectLog(t);
  const served = await serve(t, app());
  for (const method of ["FOO,BAR", "FOO"]) {
    const { responses } = await exchange(served.port, `${method} /echo HTTP/1.1\r\nHost:127.0.0.1\r\n\r\n`, { responses: 1 });
    t.equal(responses[0]?.status, 400, method);
  }
});

t.test("HTTPServerRawTest.test_malformed_first_line_response: 400 Bad Request", async (t) => {
  const served = await serve(t, app());
  const { responses } = await exchange(served.port, "asdf\r\n\r\n", { responses: 1 });
  t.equal(responses[0]?.version, "HTTP/1.1");
  t.equal(responses[0]?.status, 400);
  t.equal(responses[0]?.reason, "Bad Request");
});

// ---- KeepAliveTest ----------------------------------------------------------------------------

t.test("KeepAliveTest.test_two_requests / test_pipelined_requests: keep-alive without a Keep-Alive header", async (t) => {
  const served = await serve(t, app());
  const req = "GET / HTTP/1.1\r\nHost:127.0.0.1\r\n\r\n";
  const sequential = await exchange(served.port, [req, req], { responses: 2, gap: 30 });
  const pipelined = await exchange(served.port, req + req, { responses: 2 });
  for (const result of [sequential, pipelined]) {
    t.equal(result.responses.length, 2);
    for (const r of result.responses) {
      t.equal(r.body.toString(), "Hello world");
      t.equal(r.headers["keep-alive"], undefined, "no deprecated Keep-Alive: timeout=N");
    }
  }
});

t.test("KeepAliveTest: a handler that asks for a Keep-Alive header gets it", async (t) => {
  class Asks extends RequestHandler {
    get(): void {
      this.setHeader("Keep-Alive", "timeout=30");
      this.write("asked");
    }
  }
  const served = await serve(t, new Application([["/", Asks]]));
  const { responses } = await exchange(served.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", { responses: 1 });
  t.equal(responses[0]?.headers["keep-alive"], "timeout=30");
});

t.test("KeepAliveTest.test_request_close / test_http10_keepalive", async (t) => {
  const served = await serve(t, app());
  const closing = await exchange(served.port, "GET / HTTP/1.1\r\nHost:127.0.0.1\r\nConnection: close\r\n\r\n");
  t.equal(closing.responses[0]?.headers["connection"], "close");
  t.equal(closing.closed, true);
  const http10 = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
  const kept = await exchange(served.port, [http10, http10], { responses: 2, gap: 30 });
  t.equal(kept.responses.length, 2);
  for (const r of kept.responses) t.equal(r.headers["connection"]?.toLowerCase(), "keep-alive");
});

// ---- IdleTimeoutTest --------------------------------------------------------------------------

t.test("IdleTimeoutTest.test_unused_connection: a connection that never sends a request is closed", async (t) => {
  const served = await serve(t, app(), { idleConnectionTimeout: 100 });
  const socket = await open(served.port);
  const result = await collect(socket, { timeout: 3000 });
  t.equal(result.closed, true);
  t.equal(result.timedOut, false);
  t.equal(result.raw, "", "closed without an answer");
});

t.test("IdleTimeoutTest.test_idle_after_use: two requests, then the idle connection is closed", async (t) => {
  const served = await serve(t, app(), { idleConnectionTimeout: 100 });
  const req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  const result = await exchange(served.port, [req, req], { gap: 20, timeout: 3000 });
  t.equal(result.responses.length, 2);
  t.equal(result.closed, true);
  t.equal(result.timedOut, false);
});

t.test("HTTPConnectionTest.test_100_continue: 100 Continue, then the answer", async (t) => {
  const served = await serve(t, app());
  const socket = await open(served.port);
  socket.write("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1024\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
  const first = await new Promise<string>((resolve) => socket.once("data", (c: Buffer) => resolve(c.toString("latin1"))));
  t.match(first, /^HTTP\/1\.1 100 /);
  const rest = collect(socket);
  socket.write("a".repeat(1024));
  const result = await rest;
  t.equal(result.responses[0]?.status, 200);
  t.equal(result.responses[0]?.body.toString(), "Hello world");
});
