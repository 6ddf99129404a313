// Output as the client receives it: write() of strings, bytes, objects and arrays; finish();
// flush() streaming (raw chunked bytes on HTTP/1.1, close-delimited on HTTP/1.0); redirects;
// header validation (the user sees the handler's 500); status and reason; automatic ETag/304.
import t from "tap";
import { Application, ErrorCode, RequestHandler, TyphoonError, withServer } from "../../core/index.ts";
import { exchange } from "../helpers/raw-http.ts";
import { captureLog } from "../helpers/log.ts";

/** Errors handlers caught, by test key, to assert what a misuse threw. */
const caught = new Map<string, unknown>();
function attempt(key: string, fn: () => void): void {
  try { fn(); caught.set(key, "no error"); } catch (err) { caught.set(key, err); }
}

class Writes extends RequestHandler {
  get(kind: string): void {
    if (kind === "string") this.write("héllo <b>");
    else if (kind === "bytes") { this.write(Buffer.from([0, 1, 2])); this.write(new Uint8Array([3, 4])); }
    else if (kind === "object") this.write({ a: "</script><script>", n: 1 });
    else if (kind === "array") this.write([1, "</", { x: null }]);
    else if (kind === "mixed") { this.write("a"); this.write(Buffer.from("b")); this.write("c"); }
    else if (kind === "finish-chunk") this.finish("finished with this");
    else if (kind === "number") attempt("number", () => this.write(5 as unknown as string));
  }
}

class Misuse extends RequestHandler {
  get(kind: string): void {
    this.finish("done");
    if (kind === "write") attempt("write-after-finish", () => this.write("more"));
    else attempt("double-finish", () => this.finish());
  }
}

class Streams extends RequestHandler {
  async get(): Promise<void> {
    this.setHeader("X-Stream", "yes");
    this.write("first;");
    await this.flush();
    this.write("second;");
    await this.flush();
    await this.flush();
    this.finish("last");
  }
}

class Redirects extends RequestHandler {
  get(kind: string): void {
    if (kind === "temp") this.redirect("/to?x=1");
    else if (kind === "perm") this.redirect("/to", true);
    else if (kind === "303") this.redirect("/to", false, 303);
    else if (kind === "bad") this.redirect("/to", false, 200);
  }
}

class Headers extends RequestHandler {
  override setDefaultHeaders(): void {
    this.setHeader("X-Default", "d");
  }
  get(kind: string): void {
    if (kind === "ok") {
      this.setHeader("X-Num", 42);
      this.setHeader("X-Date", new Date(Date.UTC(2020, 0, 2, 3, 4, 5)));
      this.setHeader("X-Tab", "a\tb");
      this.addHeader("X-Multi", "1");
      this.addHeader("X-Multi", "2");
      this.addHeader("X-Multi", "3");
      this.setHeader("X-Gone", "g");
      this.clearHeader("x-gone");
      this.setHeader("X-Seen", String(this.getHeader("X-MULTI")));
      this.setStatus(201, "Made It");
      this.write("created");
    } else if (kind === "clear") {
      this.setHeader("X-Before", "b");
      this.setStatus(404);
      this.write("lost");
      this.clear();
      this.write("kept");
    } else if (kind === "unknown-status") {
      this.setStatus(599);
    } else {
      const value = { cr: "a\rb", lf: "a\nb", nul: "a\x00b", crlf: "x\r\nSet-Cookie: evil=1", del: "a\x7fb" }[kind] ?? "";
      this.setHeader("X-Bad", value);
    }
  }
}

class BadName extends RequestHandler {
  get(): void { this.setHeader("X Bad", "v"); }
}

class Etags extends RequestHandler {
  get(kind: string): void {
    if (kind === "404") this.setStatus(404);
    if (kind === "none") this.computeEtag = () => null;
    if (kind === "custom") this.computeEtag = () => '"custom-tag"';
    if (kind === "preset") this.setHeader("ETag", '"preset"');
    this.write(`body of ${kind}`);
  }
  post(): void { this.write("posted"); }
}

const app = new Application([
  ["/write/(\\w[\\w-]*)", Writes],
  ["/misuse/(\\w+)", Misuse],
  ["/stream", Streams],
  ["/redirect/(\\w+)", Redirects],
  ["/headers/([\\w-]+)", Headers],
  ["/bad-name", BadName],
  ["/etag/(\\w+)", Etags],
]);
const noEtagApp = new Application([["/etag/(\\w+)", Etags]], { etag: false });

t.test("write(string) is HTML by default, UTF-8, with a Content-Length", async (t) => {
  const res = await app.inject({ url: "/write/string" });
  t.equal(res.status, 200);
  t.equal(res.headers["content-type"], "text/html; charset=UTF-8");
  t.equal(res.headers["content-length"], String(Buffer.byteLength("héllo <b>")));
  t.equal(res.text(), "héllo <b>");
});

t.test("write(bytes) sends Buffers and Uint8Arrays as they are", async (t) => {
  const res = await app.inject({ url: "/write/bytes" });
  t.same([...res.body], [0, 1, 2, 3, 4]);
  t.equal((await app.inject({ url: "/write/mixed" })).text(), "abc");
});

t.test("write(object or array) is JSON with </ escaped", async (t) => {
  const obj = await app.inject({ url: "/write/object" });
  t.equal(obj.headers["content-type"], "application/json; charset=UTF-8");
  t.equal(obj.text(), '{"a":"<\\/script><script>","n":1}');
  t.same(obj.json(), { a: "</script><script>", n: 1 });
  const arr = await app.inject({ url: "/write/array" });
  t.equal(arr.headers["content-type"], "application/json; charset=UTF-8");
  t.equal(arr.text(), '[1,"<\\/",{"x":null}]');
});

t.test("finish(chunk) writes it last; write() of an unsupported value throws TypeError", async (t) => {
  t.equal((await app.inject({ url: "/write/finish-chunk" })).text(), "finished with this");
  await app.inject({ url: "/write/number" });
  t.type(caught.get("number"), TypeError);
});

t.test("write() after finish(), or a second finish(), throws E_RESPONSE_FINISHED; the response is intact", async (t) => {
  const a = await app.inject({ url: "/misuse/write" });
  t.equal(a.text(), "done");
  t.equal((caught.get("write-after-finish") as TyphoonError).code, ErrorCode.RESPONSE_FINISHED);
  const b = await app.inject({ url: "/misuse/finish" });
  t.equal(b.text(), "done");
  t.equal((caught.get("double-finish") as TyphoonError).code, ErrorCode.RESPONSE_FINISHED);
});

t.test("flush() streams chunked on HTTP/1.1: raw bytes on the wire", async (t) => {
  await withServer(app, async (base) => {
    const port = Number(new URL(base).port);
    const ex = await exchange(port, "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const head = ex.raw.slice(0, ex.raw.indexOf("\r\n\r\n"));
    t.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    t.match(head, /\r\ntransfer-encoding: chunked/i);
    t.notMatch(head, /content-length/i, "no Content-Length on a streamed response");
    t.match(head, /\r\nx-stream: yes/i);
    t.notMatch(head, /\r\netag/i, "no ETag on a streamed response");
    const body = ex.raw.slice(ex.raw.indexOf("\r\n\r\n") + 4);
    t.equal(body, "6\r\nfirst;\r\n7\r\nsecond;\r\n4\r\nlast\r\n0\r\n\r\n");
    t.equal(ex.responses[0]?.body.toString(), "first;second;last");
  });
});

t.test("flush() on HTTP/1.0 streams without chunking and closes", async (t) => {
  await withServer(app, async (base) => {
    const port = Number(new URL(base).port);
    const ex = await exchange(port, "GET /stream HTTP/1.0\r\nHost: x\r\n\r\n");
    t.ok(ex.closed);
    t.notMatch(ex.raw, /transfer-encoding/i);
    t.equal(ex.raw.slice(ex.raw.indexOf("\r\n\r\n") + 4), "first;second;last");
  });
});

t.test("redirect(): 302 by default, 301 when permanent, explicit 3xx; a non-3xx status → 500", async (t) => {
  const lines = captureLog(t);
  const temp = await app.inject({ url: "/redirect/temp" });
  t.equal(temp.status, 302);
  t.equal(temp.headers["location"], "/to?x=1");
  t.equal(temp.body.length, 0);
  const perm = await app.inject({ url: "/redirect/perm" });
  t.equal(perm.status, 301);
  t.equal(perm.headers["location"], "/to");
  t.equal((await app.inject({ url: "/redirect/303" })).status, 303);
  const bad = await app.inject({ url: "/redirect/bad" });
  t.equal(bad.status, 500);
  t.equal(bad.headers["location"], undefined);
  t.match(lines.map((l) => l.message).join("\n"), "3xx", "the invalid status is logged");
});

t.test("headers: numbers, dates, repeats, clear/get, status with a reason, default headers", async (t) => {
  await withServer(app, async (base) => {
    const port = Number(new URL(base).port);
    const { responses } = await exchange(port, "GET /headers/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", { responses: 1 });
    const r = responses[0]!;
    t.equal(r.status, 201);
    t.equal(r.reason, "Made It");
    t.equal(r.headers["x-num"], "42");
    t.equal(r.headers["x-date"], "Thu, 02 Jan 2020 03:04:05 GMT");
    t.equal(r.headers["x-tab"], "a\tb", "a tab is allowed");
    t.equal(r.headers["x-multi"], "1, 2, 3");
    t.equal((r.head.match(/^x-multi:/gim) ?? []).length, 3, "added headers repeat on the wire");
    t.equal(r.headers["x-gone"], undefined);
    t.equal(r.headers["x-seen"], "1,2,3");
    t.equal(r.headers["x-default"], "d");
    t.equal(r.headers["server"], undefined, "no Server header by default");
    t.equal(r.body.toString(), "created");
  });
  const cleared = await app.inject({ url: "/headers/clear" });
  t.equal(cleared.status, 200, "clear() resets the status");
  t.equal(cleared.headers["x-before"], undefined, "clear() drops headers");
  t.equal(cleared.headers["x-default"], "d", "clear() re-applies setDefaultHeaders()");
  t.equal(cleared.text(), "kept");
  const unknown = await app.inject({ url: "/headers/unknown-status" });
  t.equal(unknown.status, 599);
});

t.test("a header value with CR, LF, NUL or DEL throws: the client sees a clean 500, no injected header", async (t) => {
  const lines = captureLog(t);
  await withServer(app, async (base) => {
    const port = Number(new URL(base).port);
    for (const kind of ["cr", "lf", "nul", "crlf", "del"]) {
      const ex = await exchange(port, `GET /headers/${kind} HTTP/1.1\r\nHost: x\r\n\r\nGET /headers/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, { responses: 2 });
      t.equal(ex.responses[0]?.status, 500, kind);
      t.equal(ex.responses[0]?.headers["x-bad"], undefined, `${kind}: no X-Bad header`);
      t.notMatch(ex.raw, /evil/, `${kind}: nothing injected`);
      t.equal(ex.responses[1]?.status, 201, `${kind}: the connection keeps serving`);
    }
  });
  t.match(lines.map((l) => l.message).join("\n"), "contains a control character", "the reason is logged");
  const badName = await app.inject({ url: "/bad-name" });
  t.equal(badName.status, 500, "an invalid header name throws too");
});

t.test("ETag on a 200 GET; If-None-Match (exact, weak, *, lists) turns it into a 304 with no body", async (t) => {
  const first = await app.inject({ url: "/etag/plain" });
  const etag = first.headers["etag"] as string;
  t.match(etag, /^"[^"]+"$/);
  t.equal((await app.inject({ url: "/etag/plain" })).headers["etag"], etag, "stable for the same body");
  t.not((await app.inject({ url: "/etag/other" })).headers["etag"], etag, "differs for another body");
  for (const inm of [etag, `W/${etag}`, "*", `"nope", ${etag}`, `"a",W/${etag} , "b"`]) {
    const res = await app.inject({ url: "/etag/plain", headers: { "if-none-match": inm } });
    t.equal(res.status, 304, inm);
    t.equal(res.body.length, 0);
    t.equal(res.headers["etag"], etag);
    t.equal(res.headers["content-length"], undefined);
  }
  const miss = await app.inject({ url: "/etag/plain", headers: { "if-none-match": '"other", W/"x"' } });
  t.equal(miss.status, 200);
  t.equal(miss.text(), "body of plain");
  const head = await app.inject({ method: "HEAD", url: "/etag/plain", headers: { "if-none-match": etag } });
  t.equal(head.status, 304, "HEAD too");
});

t.test("no ETag on a non-200, on POST, with computeEtag() → null, or with etag: false", async (t) => {
  t.equal((await app.inject({ url: "/etag/404" })).headers["etag"], undefined);
  t.equal((await app.inject({ url: "/etag/404", headers: { "if-none-match": "*" } })).status, 404);
  t.equal((await app.inject({ method: "POST", url: "/etag/x" })).headers["etag"], undefined);
  t.equal((await app.inject({ method: "POST", url: "/etag/x", headers: { "if-none-match": "*" } })).status, 200);
  t.equal((await app.inject({ url: "/etag/none" })).headers["etag"], undefined);
  const off = await noEtagApp.inject({ url: "/etag/plain", headers: { "if-none-match": "*" } });
  t.equal(off.status, 200);
  t.equal(off.headers["etag"], undefined);
  const custom = await app.inject({ url: "/etag/custom", headers: { "if-none-match": '"custom-tag"' } });
  t.equal(custom.status, 304, "an overridden computeEtag() is used");
  const preset = await app.inject({ url: "/etag/preset" });
  t.equal(preset.headers["etag"], '"preset"', "an ETag set by the handler is kept");
});
