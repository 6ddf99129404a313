// The RequestHandler lifecycle as a client sees it: hook order (sync and async), prepare()
// finishing skips the method, 405 with Allow, HEAD through get(), OPTIONS, supportedMethods,
// getCurrentUser before prepare, onFinish and onConnectionClose.
import t from "tap";
import { request } from "node:http";
import { Application, Finish, RequestHandler, withServer } from "../../core/index.ts";
import { exchange } from "../helpers/raw-http.ts";
import { captureLog } from "../helpers/log.ts";
import { listen } from "../helpers/listen.ts";
import { waitFor } from "../helpers/wait.ts";

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Each request records its hook order here, keyed by a header the client sends. */
const orders = new Map<string, string[]>();
function record(h: RequestHandler, step: string): void {
  const id = String(h.request.headers["x-id"] ?? "none");
  let list = orders.get(id);
  if (list === undefined) orders.set(id, (list = []));
  list.push(step);
}

class SyncLifecycle extends RequestHandler {
  override initialize(init?: unknown): void { record(this, `initialize:${String(init)}`); }
  override prepare(): void { record(this, "prepare"); }
  get(): void { record(this, "get"); this.write("sync"); }
  override onFinish(): void { record(this, `onFinish:${this.finished}`); }
}

class AsyncLifecycle extends RequestHandler {
  override async initialize(): Promise<void> { await tick(); record(this, "initialize"); }
  override async prepare(): Promise<void> { await tick(); record(this, "prepare"); }
  override async getCurrentUser(): Promise<unknown> { await tick(); record(this, "getCurrentUser"); return { name: "ann" }; }
  async post(): Promise<void> {
    await tick();
    const user = (await this.resolveCurrentUser()) as { name: string };
    record(this, `post:${this.getBodyArgument("x")}:${user.name}`);
    this.write("async");
  }
  override async onFinish(): Promise<void> { await tick(); record(this, "onFinish"); }
}

class PrepareFinishes extends RequestHandler {
  override prepare(): void { record(this, "prepare"); this.finish("from prepare"); }
  get(): void { record(this, "get"); }
  override onFinish(): void { record(this, "onFinish"); }
}

class AsyncPrepareRedirects extends RequestHandler {
  override async prepare(): Promise<void> { await tick(); this.redirect("/elsewhere"); }
  get(): void { throw new Error("the method must not run"); }
}

class GetOnly extends RequestHandler {
  get(): void {
    this.setHeader("X-From", "get");
    this.write("got it");
  }
}

class GetPost extends RequestHandler {
  get(): void { this.write("g"); }
  post(): void { this.write("p"); }
  delete(): void { this.setStatus(204); }
}

class OwnHead extends RequestHandler {
  get(): void { this.write("the get body"); }
  head(): void { this.setHeader("X-From", "head"); this.setHeader("Content-Length", 3); }
}

class OwnOptions extends RequestHandler {
  options(): void { this.setHeader("X-From", "options"); this.write("custom"); }
}

class Restricted extends RequestHandler {
  static override supportedMethods = ["GET", "PROPFIND"];
  get(): void { this.write("restricted get"); }
  post(): void { this.write("never"); }
  propfind(): void { this.write("found props"); }
}

class SyncUser extends RequestHandler {
  override getCurrentUser(): unknown { return this.request.headers["x-user"] ?? null; }
  override prepare(): void { this.setHeader("X-Prepare-User", String(this.currentUser)); }
  get(): void { this.write(String(this.currentUser)); }
}

let closedCount = 0;
let releaseSlow: (() => void) | null = null;
class Slow extends RequestHandler {
  async get(): Promise<void> {
    await new Promise<void>((resolve) => { releaseSlow = resolve; });
    this.write("late");
  }
  override onConnectionClose(): void { closedCount++; }
}
class Quick extends RequestHandler {
  get(): void { this.write("quick"); }
  override onConnectionClose(): void { closedCount++; }
}

const app = new Application([
  ["/sync", SyncLifecycle, "init-arg"],
  ["/async", AsyncLifecycle],
  ["/prepare-finishes", PrepareFinishes],
  ["/prepare-redirects", AsyncPrepareRedirects],
  ["/get", GetOnly],
  ["/getpost", GetPost],
  ["/own-head", OwnHead],
  ["/own-options", OwnOptions],
  ["/restricted", Restricted],
  ["/user", SyncUser],
  ["/slow", Slow],
  ["/quick", Quick],
]);

t.test("hooks run in order: initialize(initArgs) → prepare → method → finish → onFinish", async (t) => {
  const res = await app.inject({ url: "/sync", headers: { "x-id": "sync" } });
  t.equal(res.status, 200);
  t.equal(res.text(), "sync");
  t.same(orders.get("sync"), ["initialize:init-arg", "prepare", "get", "onFinish:true"]);
});

t.test("async hooks are awaited in the same order, the user resolved lazily (after prepare), the body parsed before", async (t) => {
  const res = await app.inject({
    method: "POST", url: "/async", headers: { "x-id": "async", "content-type": "application/x-www-form-urlencoded" }, body: "x=1",
  });
  t.equal(res.text(), "async");
  for (let i = 0; i < 50 && (orders.get("async")?.length ?? 0) < 5; i++) await tick();
  t.same(orders.get("async"), ["initialize", "prepare", "getCurrentUser", "post:1:ann", "onFinish"]);
});

t.test("prepare() finishing the response skips the method", async (t) => {
  const res = await app.inject({ url: "/prepare-finishes", headers: { "x-id": "pf" } });
  t.equal(res.status, 200);
  t.equal(res.text(), "from prepare");
  t.same(orders.get("pf"), ["prepare", "onFinish"]);
  const redirected = await app.inject({ url: "/prepare-redirects" });
  t.equal(redirected.status, 302);
  t.equal(redirected.headers["location"], "/elsewhere");
});

t.test("a method the handler does not implement → 405 with Allow", async (t) => {
  captureLog(t);
  for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
    const res = await app.inject({ method, url: "/get", body: "ignored" });
    t.equal(res.status, 405, method);
    t.equal(res.headers["allow"], "GET, HEAD, OPTIONS", `${method} Allow`);
    t.match(res.text(), "405: Method Not Allowed");
  }
  const more = await app.inject({ method: "PUT", url: "/getpost" });
  t.equal(more.headers["allow"], "GET, HEAD, POST, DELETE, OPTIONS");
});

t.test("HEAD without head() runs get(): same headers and Content-Length, no body", async (t) => {
  await withServer(app, async (base) => {
    const port = Number(new URL(base).port);
    const { responses, rest } = await exchange(port, "GET /get HTTP/1.1\r\nHost: x\r\n\r\nHEAD /get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      { bodyless: [1] });
    const [get, head] = responses;
    t.equal(get?.status, 200);
    t.equal(head?.status, 200);
    t.equal(get?.body.toString(), "got it");
    t.equal(head?.headers["x-from"], "get");
    t.equal(head?.headers["content-length"], get?.headers["content-length"]);
    t.equal(head?.headers["content-length"], String("got it".length));
    t.ok(head?.headers["etag"], "HEAD gets the ETag GET gets");
    t.equal(head?.headers["etag"], get?.headers["etag"]);
    t.equal(rest, "", "nothing follows the HEAD response's headers");
  });
});

t.test("HEAD with its own head() uses it", async (t) => {
  const res = await app.inject({ method: "HEAD", url: "/own-head" });
  t.equal(res.status, 200);
  t.equal(res.headers["x-from"], "head");
  t.equal(res.body.length, 0);
});

t.test("OPTIONS without options() → 204 with Allow; with options() it runs", async (t) => {
  const res = await app.inject({ method: "OPTIONS", url: "/getpost" });
  t.equal(res.status, 204);
  t.equal(res.headers["allow"], "GET, HEAD, POST, DELETE, OPTIONS");
  t.equal(res.body.length, 0);
  const own = await app.inject({ method: "OPTIONS", url: "/own-options" });
  t.equal(own.status, 200);
  t.equal(own.headers["x-from"], "options");
  t.equal(own.text(), "custom");
});

t.test("methods outside supportedMethods → 405, even when implemented; listed ones work", async (t) => {
  captureLog(t);
  const post = await app.inject({ method: "POST", url: "/restricted" });
  t.equal(post.status, 405);
  t.equal(post.headers["allow"], "GET, PROPFIND", "Allow lists only supported, implemented methods");
  const prop = await app.inject({ method: "PROPFIND", url: "/restricted" });
  t.equal(prop.status, 200);
  t.equal(prop.text(), "found props");
  const other = await app.inject({ method: "PROPFIND", url: "/get" });
  t.equal(other.status, 405, "PROPFIND is not a default supported method");
  t.equal((await app.inject({ url: "/restricted" })).text(), "restricted get");
});

t.test("a synchronous getCurrentUser is available in prepare() and the method", async (t) => {
  const res = await app.inject({ url: "/user", headers: { "x-user": "bob" } });
  t.equal(res.headers["x-prepare-user"], "bob");
  t.equal(res.text(), "bob");
  t.equal((await app.inject({ url: "/user" })).text(), "null");
});

t.test("onConnectionClose runs when the client leaves before the response, not after a finished one", async (t) => {
  const { port, server } = await listen(t, app);
  const before = closedCount;
  await new Promise<void>((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/slow" });
    req.on("error", () => resolve());
    req.end();
    const wait = setInterval(() => {
      if (releaseSlow !== null) { clearInterval(wait); req.destroy(); resolve(); }
    }, 5);
  });
  await waitFor(() => closedCount !== before, { what: "onConnectionClose" }).catch(() => undefined);
  t.equal(closedCount, before + 1, "called once for the abandoned request");
  releaseSlow?.();
  // A finished response, then the client goes away: its connection really closes here, and
  // stop() resolves only once the server has seen every connection close.
  const quick = await exchange(port, "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n", { responses: 1 });
  t.equal(quick.responses[0]?.body.toString(), "quick");
  await server.stop(10_000);
  // The server counts a connection gone before its socket emits "close" (from libuv's close
  // phase, after this turn's setImmediate callbacks): two loop turns later every "close" ran.
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
  t.equal(closedCount, before + 1, "not called for a finished response whose connection then closed");
});

class Streamed extends RequestHandler {
  static override streamRequestBody = true;
  chunks: string[] = [];
  sawBodyInPrepare = -1;
  override prepare(): void { this.sawBodyInPrepare = this.request.body.length; this.chunks.push("prepare"); }
  override async dataReceived(chunk: Buffer): Promise<void> {
    await tick();
    this.chunks.push(chunk.toString());
  }
  post(): void { this.write({ steps: this.chunks, bodyInPrepare: this.sawBodyInPrepare }); }
}

class Detached extends RequestHandler {
  get(): void {
    const { res } = this.detach();
    res.writeHead(299, { "content-type": "text/plain" });
    res.end("raw node response");
  }
}

class FinishHookThrows extends RequestHandler {
  get(kind: string): void { this.write(kind); }
  override onFinish(): void | Promise<void> {
    if (this.pathArgs[0] === "sync") throw new Error("onFinish broke");
    return Promise.reject(new Error("onFinish rejected"));
  }
}

class CloseHookThrows extends RequestHandler {
  async get(): Promise<void> { await new Promise(() => {}); }
  override onConnectionClose(): void { throw new Error("onConnectionClose broke"); }
}

class Throws extends RequestHandler {
  get(): void { throw new Error("handler failed"); }
}

t.test("streamRequestBody: prepare() before the body, then dataReceived per chunk (awaited), then the method", async (t) => {
  const streamApp = new Application([["/stream", Streamed]]);
  await withServer(streamApp, async (base) => {
    const port = Number(new URL(base).port);
    const ex = await exchange(port, [
      "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
      "3\r\none\r\n", "3\r\ntwo\r\n", "0\r\n\r\n",
    ], { responses: 1, gap: 30 });
    const out = JSON.parse(ex.responses[0]?.body.toString() ?? "null") as { steps: string[]; bodyInPrepare: number };
    t.equal(out.steps[0], "prepare");
    t.equal(out.steps.slice(1).join(""), "onetwo", "every chunk reached dataReceived, in order");
    t.equal(out.bodyInPrepare, 0, "the body was not read before prepare()");
  });
  captureLog(t);
  await withServer(streamApp, async (base) => {
    const port = Number(new URL(base).port);
    const declared = await exchange(port, "POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n", { responses: 1 });
    t.equal(declared.responses[0]?.status, 413, "a declared length over the limit");
    const chunk = `40\r\n${"y".repeat(64)}\r\n`;
    const grown = await exchange(port, ["POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", chunk, chunk, chunk], { responses: 1, gap: 10 });
    t.equal(grown.responses[0]?.status, 413, "a streamed body growing over the limit");
  }, { maxBodySize: 100 });
});

t.test("detach() hands the raw response to the handler; typhoon sends nothing more", async (t) => {
  const res = await new Application([["/", Detached]]).inject({ url: "/" });
  t.equal(res.status, 299);
  t.equal(res.headers["server"], undefined, "none of typhoon's headers");
  t.equal(res.text(), "raw node response");
});

t.test("the access log: 4xx warn, 5xx error, 2xx only with debug; logFunction replaces it", async (t) => {
  const lines = captureLog(t);
  const plain = new Application([["/ok", GetOnly], ["/boom", Throws]]);
  await plain.inject({ url: "/ok" });
  await plain.inject({ url: "/missing" });
  await plain.inject({ url: "/boom" });
  t.notOk(lines.some((l) => /^200 GET \/ok/.test(l.message)), "a 200 is not logged by default");
  t.ok(lines.some((l) => l.level === "warn" && /^404 GET \/missing \(127\.0\.0\.1\) [\d.]+ms$/.test(l.message)));
  t.ok(lines.some((l) => l.level === "error" && /^500 GET \/boom/.test(l.message)));
  const debug = new Application([["/ok", GetOnly]], { debug: true });
  await debug.inject({ url: "/ok" });
  t.ok(lines.some((l) => l.level === "info" && /^200 GET \/ok/.test(l.message)), "with debug a 200 is logged");
  const seen: string[] = [];
  const custom = new Application([["/ok", GetOnly]], { logFunction: (h) => { seen.push(`${h.getStatus()} ${h.request.path}`); } });
  await custom.inject({ url: "/ok" });
  await custom.inject({ url: "/nope" });
  t.same(seen, ["200 /ok", "404 /nope"]);
});

t.test("a throwing onFinish, onConnectionClose or logFunction is logged and the server keeps serving", async (t) => {
  const lines = captureLog(t);
  const hooks = new Application([["/finish/(\\w+)", FinishHookThrows], ["/close", CloseHookThrows], ["/ok", GetOnly]]);
  t.equal((await hooks.inject({ url: "/finish/sync" })).text(), "sync");
  t.equal((await hooks.inject({ url: "/finish/async" })).text(), "async");
  await withServer(hooks, async (base) => {
    const port = Number(new URL(base).port);
    await exchange(port, "GET /close HTTP/1.1\r\nHost: x\r\n\r\n", { timeout: 100 });
    const logged = (): boolean => lines.some((l) => l.message.includes("onConnectionClose broke"));
    await waitFor(logged, { what: "the hook's error in the log" }).catch(() => undefined);
    t.ok(logged(), "the client leaving ran the throwing hook");
    t.equal((await fetch(`${base}/ok`)).status, 200);
  });
  const text = lines.map((l) => l.message).join("\n");
  t.match(text, "onFinish broke");
  t.match(text, "onFinish rejected");
  t.match(text, "onConnectionClose broke");
  const badLog = new Application([["/boom", Throws], ["/ok", GetOnly]], { logFunction: () => { throw new Error("logFunction broke"); } });
  await withServer(badLog, async (base) => {
    const res = await fetch(`${base}/boom`).then((r) => r.status, () => "cut");
    t.ok(res === 500 || res === "cut", `the failed request is answered or cut (${res})`);
    const ok = await fetch(`${base}/ok`);
    t.equal(ok.status, 200, "the server keeps serving");
  });
  t.match(lines.map((l) => l.message).join("\n"), "logFunction broke");
});

class FinishThrown extends RequestHandler {
  get(): void { throw new Finish("finished body"); }
}

t.test("a logFunction that throws after a complete response leaves the connection serving", async (t) => {
  const lines = captureLog(t);
  const badLog = new Application([["/finish", FinishThrown], ["/ok", GetOnly]], { logFunction: () => { throw new Error("logFunction broke"); } });
  await withServer(badLog, async (base) => {
    const ex = await exchange(Number(new URL(base).port), "GET /finish HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", { responses: 2 });
    t.equal(ex.responses[0]?.body.toString(), "finished body");
    t.equal(ex.responses[1]?.body.toString(), "got it", "the next request on the connection is answered");
  });
  t.match(lines.map((l) => l.message).join("\n"), "logFunction broke");
});
