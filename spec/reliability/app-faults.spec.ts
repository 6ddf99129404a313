// Faults inside the app: whatever a handler, a hook, a logger or a timer throws is logged,
// answered where a response is still due, and never fatal; a client that goes away
// mid-response gets onConnectionClose called and leaves no connection or pending work behind.
import t from "tap";
import {
  Application, Finish, HTTPError, IOLoop, PeriodicCallback, RequestHandler, type AppSettings,
} from "../../core/index.ts";
import { exchange, getOnce, open, simpleGet } from "../helpers/raw-http.ts";
import { captureLog, logText, type LogLine } from "../helpers/log.ts";
import { listen } from "../helpers/listen.ts";

const SECRET_MESSAGE = "db password is hunter2";
const after = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!check() && performance.now() < deadline) await after(10);
  return check();
}

let methodRuns = 0;

class MainHandler extends RequestHandler {
  get(): void { this.write("main"); }
}
class SyncThrow extends RequestHandler {
  get(): void { throw new Error(SECRET_MESSAGE); }
}
class AsyncReject extends RequestHandler {
  async get(): Promise<void> {
    await after(1);
    throw new TypeError(SECRET_MESSAGE);
  }
}
class ThrowsValue extends RequestHandler {
  get(): void { throw (this.getArgument("v", "") === "null" ? null : "a bare string") as unknown as Error; }
}
class PrepareThrows extends RequestHandler {
  override prepare(): void { throw new Error(SECRET_MESSAGE); }
  get(): void { methodRuns++; }
}
class PrepareRejects extends RequestHandler {
  override async prepare(): Promise<void> {
    await after(1);
    throw new Error(SECRET_MESSAGE);
  }
  get(): void { methodRuns++; }
}
class InitializeThrows extends RequestHandler {
  override initialize(): void { throw new Error(SECRET_MESSAGE); }
  get(): void { methodRuns++; }
}
class ConstructorThrows extends RequestHandler {
  override setDefaultHeaders(): void { throw new Error(SECRET_MESSAGE); }
  get(): void { methodRuns++; }
}
class UserRejects extends RequestHandler {
  override async getCurrentUser(): Promise<unknown> { throw new Error(SECRET_MESSAGE); }
  // currentUser is lazy (Tornado): the hook runs, and fails, when the method asks for the user.
  async get(): Promise<void> {
    await this.resolveCurrentUser();
    methodRuns++;
  }
}
class OnFinishThrows extends RequestHandler {
  get(): void { this.write("finished fine"); }
  override onFinish(): void { throw new Error("onFinish failed"); }
}
class OnFinishRejects extends RequestHandler {
  get(): void { this.write("finished fine"); }
  override async onFinish(): Promise<void> {
    await after(1);
    throw new Error("async onFinish failed");
  }
}
class WriteErrorThrows extends RequestHandler {
  get(): void { throw new HTTPError(404); }
  override writeError(): void { throw new Error("writeError failed"); }
}
class BadReason extends RequestHandler {
  get(): void { throw new HTTPError(400, undefined, { reason: `bad\r\nX-Injected: ${this.getArgument("v", "1")}` }); }
}
class BadStatus extends RequestHandler {
  get(): void { throw new HTTPError(1234); }
}
class BadFinish extends RequestHandler {
  get(): void { throw new Finish(42); }
}
class ThrowAfterFlush extends RequestHandler {
  async get(): Promise<void> {
    this.write("partial");
    await this.flush();
    throw new Error("after the headers went out");
  }
}
class ThrowAfterFinish extends RequestHandler {
  get(): void {
    this.finish("done");
    throw new Error("after finish");
  }
}
class DataReceivedThrows extends RequestHandler {
  static override streamRequestBody = true;
  override dataReceived(): void { throw new Error(SECRET_MESSAGE); }
  post(): void { methodRuns++; }
}

const rules: ConstructorParameters<typeof Application>[0] = [
  ["/", MainHandler], ["/sync", SyncThrow], ["/async", AsyncReject], ["/value", ThrowsValue], ["/prepare", PrepareThrows],
  ["/prepare-async", PrepareRejects], ["/initialize", InitializeThrows], ["/constructor", ConstructorThrows],
  ["/user", UserRejects], ["/on-finish", OnFinishThrows], ["/on-finish-async", OnFinishRejects],
  ["/write-error", WriteErrorThrows], ["/bad-reason", BadReason], ["/bad-status", BadStatus], ["/bad-finish", BadFinish],
  ["/after-flush", ThrowAfterFlush], ["/after-finish", ThrowAfterFinish], ["/data", DataReceivedThrows],
];

function errorsIn(lines: readonly LogLine[]): string[] {
  return lines.filter((l) => l.level === "error").map((l) => l.message);
}

t.test("a handler that throws or rejects anywhere in the lifecycle is a 500 without the message", async (t) => {
  const lines = captureLog(t);
  const { port } = await listen(t, new Application(rules));
  const paths = ["/sync", "/async", "/value", "/value?v=null", "/prepare", "/prepare-async", "/initialize", "/constructor", "/user"];
  for (const path of paths) {
    const before = errorsIn(lines).length;
    const res = await getOnce(port, path);
    t.equal(res?.status, 500, `${path}: 500`);
    t.notMatch(res?.body.toString() ?? "", SECRET_MESSAGE, `${path}: the error's message is not sent`);
    t.notMatch(res?.body.toString() ?? "", /at .*\.ts:\d+/, `${path}: no stack`);
    t.ok(errorsIn(lines).length > before, `${path}: logged as an error`);
    t.equal((await getOnce(port, "/"))?.status, 200, `${path}: the server keeps serving`);
  }
  t.equal(methodRuns, 0, "no method ran after a failed initialize/prepare/getCurrentUser");
  t.match(logText(lines), SECRET_MESSAGE, "the message is in the log");
});

t.test("onFinish throwing or rejecting does not touch the response already sent", async (t) => {
  const lines = captureLog(t);
  const { port } = await listen(t, new Application(rules));
  for (const path of ["/on-finish", "/on-finish-async"]) {
    const res = await getOnce(port, path);
    t.equal(res?.status, 200, path);
    t.equal(res?.body.toString(), "finished fine");
  }
  t.ok(await until(() => /Exception in onFinish[\s\S]*async onFinish failed/.test(logText(lines))), "both logged");
  t.match(logText(lines), /onFinish failed/);
});

t.test("writeError throwing answers 500 with an empty body", async (t) => {
  const lines = captureLog(t);
  const { port } = await listen(t, new Application(rules));
  const res = await getOnce(port, "/write-error");
  t.equal(res?.status, 500);
  t.equal(res?.body.length, 0);
  t.match(logText(lines), /writeError[\s\S]*writeError failed/);
});

t.test("an error whose reason carries CR/LF, an impossible status or a bad Finish chunk is a 500, never a crash", async (t) => {
  const lines = captureLog(t);
  const { port } = await listen(t, new Application(rules));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason); };
  process.on("unhandledRejection", onUnhandled);
  t.teardown(() => { process.off("unhandledRejection", onUnhandled); });
  const reason = await getOnce(port, "/bad-reason?v=evil");
  t.equal(reason?.status, 400, "bad reason: the status is kept");
  t.equal(reason?.reason, "Unknown", "bad reason: replaced by Unknown (Tornado)");
  t.notMatch(reason?.head ?? "", /X-Injected/i, "no injected header");
  t.equal((await getOnce(port, "/bad-status"))?.status, 500, "status 1234: 500");
  const finish = await getOnce(port, "/bad-finish");
  t.equal(finish?.status, 500, "Finish(42): 500");
  await after(20);
  t.same(unhandled, [], "no unhandled rejection");
  t.ok(errorsIn(lines).length >= 2, "the bad status and the bad Finish are logged");
  t.equal((await getOnce(port, "/"))?.status, 200);
});

t.test("a throwing logFunction neither loses the response nor stops the server", async (t) => {
  const lines = captureLog(t);
  const settings: AppSettings = { logFunction: () => { throw new Error("logger down"); } };
  const { port } = await listen(t, new Application(rules, settings));
  t.equal((await getOnce(port, "/"))?.body.toString(), "main", "a good answer is still delivered");
  t.equal((await getOnce(port, "/sync"))?.status, 500, "an error answer too");
  t.equal((await getOnce(port, "/nowhere"))?.status, 404);
  t.match(logText(lines), /logger down/);
});

t.test("an error after the headers went out cuts the connection: the truncated body is visible", async (t) => {
  const lines = captureLog(t);
  const { port } = await listen(t, new Application(rules));
  const ex = await exchange(port, simpleGet("/after-flush"));
  t.equal(ex.responses.length, 0, "no complete response");
  t.match(ex.rest, /^HTTP\/1\.1 200 OK[\s\S]*partial/, "the headers and what was flushed");
  t.ok(ex.closed && !ex.timedOut, "then a close, no hang");
  t.match(logText(lines), /after the headers went out/);
  const done = await getOnce(port, "/after-finish");
  t.equal(done?.body.toString(), "done", "an error after finish() keeps the finished response");
  t.match(logText(lines), /after the response was finished[\s\S]*after finish/);
});

t.test("dataReceived throwing is a 500 on the open connection, not a reset", async (t) => {
  captureLog(t);
  const { port } = await listen(t, new Application(rules));
  const ex = await exchange(port, `POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
  t.same(ex.responses.map((r) => r.status), [500]);
  t.notOk(ex.reset, "not reset");
  t.equal(methodRuns, 0, "post() did not run");
});

t.test("errors in IOLoop callbacks, timers and PeriodicCallback are logged and the loop goes on", async (t) => {
  const logged: string[] = [];
  const loop = new IOLoop({ logError: (message) => { logged.push(message); } });
  loop.addCallback(() => { throw new Error("callback boom"); });
  loop.addCallback(async () => { await after(1); throw new Error("async callback boom"); });
  loop.callLater(5, () => { throw new Error("timer boom"); });
  let calls = 0;
  const periodic = new PeriodicCallback(() => {
    calls++;
    throw new Error(`periodic boom ${calls}`);
  }, 10, 0, { ioloop: loop });
  periodic.start();
  t.teardown(() => periodic.stop());
  t.ok(await until(() => calls >= 3), "the periodic callback keeps being called after throwing");
  t.ok(periodic.isRunning());
  const text = logged.join("\n");
  for (const what of ["callback boom", "async callback boom", "timer boom", "periodic boom 1", "periodic boom 2"]) {
    t.match(text, what, `${what}: logged`);
  }
  let ran = false;
  loop.callLater(1, () => { ran = true; });
  t.ok(await until(() => ran), "later callbacks still run");
});

// ---- Clients that go away ---------------------------------------------------------------------

let closes = 0;
let streamEnded = false;
let waiterEnded = false;

class Streamer extends RequestHandler {
  async get(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      this.write("x".repeat(64 * 1024));
      await this.flush();
    }
    streamEnded = true;
  }
  override onConnectionClose(): void { closes++; }
}

let waiterStarted = false;
let releaseWaiter: (() => void) | null = null;
class Waiter extends RequestHandler {
  async get(): Promise<void> {
    waiterStarted = true;
    await new Promise<void>((resolve) => { releaseWaiter = resolve; });
    this.write("too late");
    waiterEnded = true;
  }
  override onConnectionClose(): void { closes++; }
}

let uploadStarted = false;
class Uploader extends RequestHandler {
  override initialize(): void { uploadStarted = true; }
  post(): void { this.write("got it"); }
  override onConnectionClose(): void { closes++; }
}

t.test("a client leaving mid-response: onConnectionClose once, the handler ends, nothing is left open", async (t) => {
  const lines = captureLog(t);
  const { port, server } = await listen(t, new Application([["/", MainHandler], ["/stream", Streamer], ["/wait", Waiter], ["/upload", Uploader]]));
  closes = 0;
  // Leaves after the first bytes of a 12 MB streamed response.
  const streamSocket = await open(port);
  streamSocket.write(simpleGet("/stream"));
  await new Promise((resolve) => streamSocket.once("data", resolve));
  streamSocket.destroy();
  t.ok(await until(() => closes === 1), "onConnectionClose for the stream");
  t.ok(await until(() => streamEnded), "the streaming handler ran to its end (flush() resolves after a close)");
  // Leaves while the handler awaits.
  const waitSocket = await open(port);
  waitSocket.write(simpleGet("/wait"));
  t.ok(await until(() => waiterStarted), "the handler is waiting");
  waitSocket.destroy();
  t.ok(await until(() => closes === 2), "onConnectionClose while the handler waited");
  releaseWaiter?.();
  t.ok(await until(() => waiterEnded), "the waiting handler finished into the closed response");
  // Leaves half-way through the body.
  const uploadSocket = await open(port);
  uploadSocket.write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc");
  t.ok(await until(() => uploadStarted), "the handler is reading the body");
  uploadSocket.destroy();
  t.ok(await until(() => closes === 3), "onConnectionClose during the upload");
  const connections = (): Promise<number> => new Promise((resolve, reject) => {
    server.httpServer!.getConnections((err, n) => (err ? reject(err) : resolve(n)));
  });
  let open_ = await connections();
  const deadline = performance.now() + 10_000;
  while (open_ > 0 && performance.now() < deadline) {
    await after(20);
    open_ = await connections();
  }
  t.equal(open_, 0, "no connection left open");
  t.same(errorsIn(lines), [], "a client leaving is not an error");
  t.equal((await getOnce(port, "/"))?.status, 200);
  t.equal(closes, 3, "exactly one call per departed client; none for the good request");
});
