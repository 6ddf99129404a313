// The decorators over real sockets: @authenticated (Tornado's /login?next=%2Frelative, 403 for
// POST), @addslash/@removeslash keeping the query, and @streamRequestBody (prepare on headers,
// dataReceived per chunk with backpressure, a 401 from prepare() without reading the body).
import t from "tap";
import { once } from "node:events";
import { connect } from "node:net";
import { Application } from "../../core/web/app.ts";
import { addslash, authenticated, removeslash, streamRequestBody } from "../../core/web/decorators.ts";
import { HTTPError } from "../../core/errors.ts";
import { RequestHandler } from "../../core/web/handler.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog } from "../helpers/log.ts";
import { rawRequest } from "../handlers/raw-request.ts";
import type { Test } from "tap";

class AuthHandler extends RequestHandler {
  override getCurrentUser(): string | null {
    return this.getCookie("user") ?? null;
  }
  @authenticated
  get(): void {
    this.write(`hello ${String(this.currentUser)}`);
  }
  @authenticated
  post(): void {
    this.write("posted");
  }
}

class AbsoluteLoginHandler extends AuthHandler {
  override getLoginUrl(): string {
    return "http://login.example/auth";
  }
}

class QueryLoginHandler extends AuthHandler {
  override getLoginUrl(): string {
    return "/login?service=app";
  }
}

class RemoveSlashHandler extends RequestHandler {
  @removeslash
  get(): void {
    this.write("removeslash");
  }
  @removeslash
  post(): void {
    this.write("posted");
  }
}

class AddSlashHandler extends RequestHandler {
  @addslash
  get(): void {
    this.write("addslash");
  }
  @addslash
  post(): void {
    this.write("posted");
  }
}

// Tornado's usual form, `@authenticated async def get`: the decorators keep an async method's
// type (this class is the type check: it did not compile before) and its promise.
class AsyncDecoratedHandler extends RequestHandler {
  override getCurrentUser(): string | null {
    return this.getCookie("user") ?? null;
  }
  @authenticated
  @removeslash
  async get(): Promise<void> {
    await new Promise((r) => setTimeout(r, 1));
    this.write(`async hello ${String(this.currentUser)}`);
  }
  @addslash
  async put(): Promise<void> {
    this.write("put");
  }
}

const log: string[] = [];

@streamRequestBody
class UploadHandler extends RequestHandler {
  #bytes = 0;
  #chunks = 0;
  override prepare(): void {
    log.push(`prepare complete=${String(this.request.raw.complete)}`);
    if (this.request.headers.authorization !== "Bearer ok") throw new HTTPError(401);
  }
  override async dataReceived(chunk: Buffer): Promise<void> {
    this.#bytes += chunk.length;
    this.#chunks++;
    // A slow consumer: the next chunk must wait for this one.
    await new Promise((r) => setTimeout(r, 1));
  }
  put(): void {
    this.write({ bytes: this.#bytes, chunks: this.#chunks, body: this.request.body.length });
  }
}

class StaticFlagHandler extends UploadHandler {}

async function serve(t: Test, settings: Record<string, unknown> = {}): Promise<{ base: string; port: number }> {
  captureLog(t);
  const app = new Application([
    ["/relative", AuthHandler],
    ["/absolute", AbsoluteLoginHandler],
    ["/query", QueryLoginHandler],
    ["/removeslash/", RemoveSlashHandler],
    ["/addslash", AddSlashHandler],
    ["/removeslash/?", RemoveSlashHandler],
    ["/addslash/?", AddSlashHandler],
    ["/upload", UploadHandler],
    ["/upload2", StaticFlagHandler],
    ["/async/?", AsyncDecoratedHandler],
  ], { loginUrl: "/login", ...settings });
  const { port } = await listen(t, app);
  return { base: `http://127.0.0.1:${port}`, port };
}

t.test("@authenticated redirects an anonymous GET to /login?next=%2Frelative", async (t) => {
  const { base } = await serve(t);
  const r = await rawRequest(base, "/relative");
  t.equal(r.status, 302);
  t.equal(r.headers.location, "/login?next=%2Frelative");
  const withQuery = await rawRequest(base, "/relative?a=1&b=/c!");
  t.equal(withQuery.headers.location, "/login?next=%2Frelative%3Fa%3D1%26b%3D%2Fc%21", "next is quote_plus-encoded, as Tornado's urlencode");
  const head = await rawRequest(base, "/relative", { method: "HEAD" });
  t.equal(head.status, 302, "HEAD is redirected like GET");
});

t.test("@authenticated: 403 for other methods, the method runs for a user", async (t) => {
  const { base } = await serve(t);
  t.equal((await rawRequest(base, "/relative", { method: "POST" })).status, 403);
  const user = await rawRequest(base, "/relative", { headers: { Cookie: "user=ann" } });
  t.equal(user.status, 200);
  t.equal(user.text(), "hello ann");
  t.equal((await rawRequest(base, "/relative", { method: "POST", headers: { Cookie: "user=ann" } })).text(), "posted");
});

t.test("@authenticated: an absolute login URL gets the full URL as next; one with a query is used as is", async (t) => {
  const { base, port } = await serve(t);
  t.equal((await rawRequest(base, "/absolute")).headers.location,
    `http://login.example/auth?next=http%3A%2F%2F127.0.0.1%3A${port}%2Fabsolute`);
  t.equal((await rawRequest(base, "/query")).headers.location, "/login?service=app");
});

t.test("@removeslash redirects GET /removeslash/?foo=bar to /removeslash?foo=bar (301); POST is 404", async (t) => {
  const { base } = await serve(t);
  const r = await rawRequest(base, "/removeslash/?foo=bar");
  t.equal(r.status, 301);
  t.equal(r.headers.location, "/removeslash?foo=bar");
  const plain = await rawRequest(base, "/removeslash/");
  t.equal(plain.headers.location, "/removeslash");
  t.equal((await rawRequest(base, "/removeslash")).text(), "removeslash");
  t.equal((await rawRequest(base, "/removeslash/", { method: "POST" })).status, 404);
});

t.test("@addslash redirects GET /addslash?foo=bar to /addslash/?foo=bar (301); POST is 404", async (t) => {
  const { base } = await serve(t);
  const r = await rawRequest(base, "/addslash?foo=bar");
  t.equal(r.status, 301);
  t.equal(r.headers.location, "/addslash/?foo=bar");
  t.equal((await rawRequest(base, "/addslash/")).text(), "addslash");
  t.equal((await rawRequest(base, "/addslash", { method: "POST" })).status, 404);
});

t.test("the decorators on async methods: the method is awaited for a user; an answer instead of it is a promise of nothing", async (t) => {
  const { base } = await serve(t);
  const anonymous = await rawRequest(base, "/async");
  t.equal(anonymous.status, 302);
  t.equal(anonymous.headers.location, "/login?next=%2Fasync");
  const user = await rawRequest(base, "/async", { headers: { Cookie: "user=ann" } });
  t.equal(user.status, 200);
  t.equal(user.text(), "async hello ann");
  t.equal((await rawRequest(base, "/async/", { headers: { Cookie: "user=ann" } })).headers.location, "/async", "@removeslash under @authenticated");
  t.equal((await rawRequest(base, "/async", { method: "PUT" })).status, 404, "@addslash: PUT without the slash is 404");
  t.equal((await rawRequest(base, "/async/", { method: "PUT" })).text(), "put");
  // Called directly, a method its decorator answered still returns a promise (of nothing).
  const app = new Application([["/async/?", AsyncDecoratedHandler]], { loginUrl: "/login" });
  const res = await app.inject({ url: "/async" });
  t.equal(res.status, 302);
  class Slashless extends RequestHandler {
    @removeslash
    async get(): Promise<void> {}
    @removeslash
    head(): void {}
  }
  const redirects: string[] = [];
  const fake = { request: { method: "GET", path: "/x/", query: "" }, redirect: (url: string) => redirects.push(url) } as unknown as Slashless;
  const answered = Slashless.prototype.get.call(fake);
  t.ok(answered instanceof Promise, "a promise, as the async method would return");
  t.equal(await answered, undefined);
  t.equal(Slashless.prototype.head.call(fake), undefined, "nothing for a synchronous method");
  t.same(redirects, ["/x", "/x"]);
});

t.test("@streamRequestBody: prepare() on headers, dataReceived() per chunk, then the method; body not buffered", async (t) => {
  const { base } = await serve(t);
  log.length = 0;
  const body = Buffer.alloc(4 * 1024 * 1024, "x");
  const r = await rawRequest(base, "/upload", { method: "PUT", headers: { Authorization: "Bearer ok" }, body });
  t.equal(r.status, 200);
  const result = JSON.parse(r.text()) as { bytes: number; chunks: number; body: number };
  t.equal(result.bytes, body.length, "every byte reached dataReceived");
  t.ok(result.chunks > 1, `the body came in ${result.chunks} chunks`);
  t.equal(result.body, 0, "request.body stays empty");
  t.same(log, ["prepare complete=false"], "prepare ran before the body was read");
  const flagged = await rawRequest(base, "/upload2", { method: "PUT", headers: { Authorization: "Bearer ok" }, body: "abc" });
  t.equal((JSON.parse(flagged.text()) as { bytes: number }).bytes, 3, "a subclass inherits the decorator");
});

t.test("@streamRequestBody: a 401 from prepare() is sent at once, without reading the body, and the connection closes", async (t) => {
  const { port } = await serve(t);
  const socket = connect(port, "127.0.0.1");
  t.teardown(() => socket.destroy());
  await once(socket, "connect");
  let received = "";
  socket.on("data", (d: Buffer) => { received += d.toString("latin1"); });
  const closed = once(socket, "close");
  // Announce 100 MB, send 10 bytes: the answer must not wait for the rest.
  socket.write("PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n0123456789");
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error(`no close: ${received}`)), 10_000))]);
  t.match(received, /^HTTP\/1\.1 401 /);
  t.match(received, /connection: close/i);
});
