/**
 * The access log and request ids, with a real process whose stdout is a pipe (so typhoon's
 * default logger writes JSON lines): one record per request with its reqId, an error's record
 * with the same reqId as its access record, the client's X-Request-Id kept when sane and echoed,
 * `this.log` bound to the request, and a real pino() logger receiving the records.
 * In-process: accessLog:false, logFunction, requestIdHeader.
 */
import t from "tap";
import type { Test } from "tap";
import { request } from "node:http";
import { Application, RequestHandler, setLogger, url, type Logger } from "../../core/index.ts";
import { freePort, get, startFixture, until, type Fixture } from "../fixtures/cluster-harness.ts";

type LogRecord = Record<string, unknown>;

function records(fx: Fixture): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of fx.lines) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as LogRecord);
    } catch {
      // not a record
    }
  }
  return out;
}

function getWith(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function start(t: Test, env: Record<string, string> = {}): Promise<{ fx: Fixture; port: number }> {
  const port = await freePort();
  const fx = startFixture("ops-app.ts", { PORT: String(port), TYPHOON_LOG_FORMAT: "", ...env });
  t.teardown(() => fx.kill());
  await fx.waitFor(/^ops ready/);
  return { fx, port };
}

t.test("every request gets one JSON access record with its reqId, echoed as X-Request-Id", async (t) => {
  const { fx, port } = await start(t);
  const answers = [await get(port, "/"), await get(port, "/items/7"), await get(port, "/nowhere")];
  const ids = answers.map((a) => a.headers["x-request-id"]);
  t.same(answers.map((a) => a.status), [200, 200, 404]);
  for (const id of ids) t.match(id, /^[0-9a-f]{8}-[0-9a-z]+$/, "a generated id");
  t.equal(new Set(ids).size, 3, "each request its own id");
  await until(() => records(fx).filter((r) => r["status"] !== undefined).length >= 3, 5_000, "three access records");
  const access = records(fx).filter((r) => r["status"] !== undefined);
  t.same(access.map((r) => r["reqId"]), ids, "one record per request, in order, with the id sent back");
  t.match(access[0], { level: 30, method: "GET", path: "/", route: "/", status: 200, remoteIp: "127.0.0.1", taskId: null });
  t.type(access[0]!["ms"], "number");
  t.equal(access[0]!["bytes"], 4, "the body's bytes");
  t.match(access[1], { path: "/items/7", route: "item", status: 200 }, "a named rule's route is its name");
  t.match(access[2], { path: "/nowhere", route: "(none)", status: 404 });
  const item = records(fx).find((r) => r["msg"] === "item looked up");
  t.match(item, { item: "7", reqId: ids[1] }, "this.log carries the request's id");
  t.equal(JSON.parse(answers[1]!.body).reqId, ids[1], "this.requestId is the echoed id");
});

t.test("an error's record carries the same reqId as its access record", async (t) => {
  const { fx, port } = await start(t);
  const res = await get(port, "/boom");
  t.equal(res.status, 500);
  const id = res.headers["x-request-id"];
  await until(() => records(fx).some((r) => r["status"] === 500), 5_000, "the access record");
  const error = records(fx).find((r) => r["level"] === 50);
  const access = records(fx).find((r) => r["status"] === 500);
  t.match(error, { reqId: id, err: { message: "boom on purpose" } });
  t.match((error!["err"] as { stack: string }).stack, /BoomHandler/);
  t.equal(access!["reqId"], id);
});

t.test("the client's X-Request-Id is kept when it is 1-200 visible ASCII characters, else replaced", async (t) => {
  const { fx, port } = await start(t);
  const kept = await getWith(port, "/", { "x-request-id": "edge-7f3a/42" });
  t.equal(kept.headers["x-request-id"], "edge-7f3a/42");
  const tooLong = await getWith(port, "/", { "x-request-id": "x".repeat(201) });
  t.not(tooLong.headers["x-request-id"], "x".repeat(201));
  const spaced = await getWith(port, "/", { "x-request-id": "has space" });
  t.match(spaced.headers["x-request-id"], /^[0-9a-f]{8}-/);
  await until(() => records(fx).filter((r) => r["status"] !== undefined).length >= 3, 5_000, "three records");
  t.equal(records(fx).find((r) => r["status"] !== undefined)!["reqId"], "edge-7f3a/42", "the kept id is logged");
});

t.test("a pino() logger in settings receives the access and error records", async (t) => {
  const { fx, port } = await start(t, { LOGGER: "pino" });
  const ok = await get(port, "/");
  const boom = await get(port, "/boom");
  await until(() => records(fx).filter((r) => r["status"] !== undefined).length >= 2, 5_000, "two access records");
  const recs = records(fx);
  // pino's own records: its `level` numbers and no typhoon-only formatting.
  t.match(recs.find((r) => r["reqId"] === ok.headers["x-request-id"] && r["status"] === 200), { level: 30, route: "/", method: "GET" });
  t.match(recs.find((r) => r["level"] === 50), { reqId: boom.headers["x-request-id"], err: { message: "boom on purpose" } });
});

class Hello extends RequestHandler {
  get(): void {
    this.write("hi");
  }
}

function collecting(): { logger: Logger; records: LogRecord[] } {
  const recs: LogRecord[] = [];
  const make = (bindings: LogRecord): Logger => {
    const at = (level: string) => (first: object | string, msg?: unknown): void => {
      recs.push(typeof first === "string" ? { ...bindings, level, msg: first } : { ...bindings, ...first, level, msg });
    };
    return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: (b) => make({ ...bindings, ...b }) };
  };
  return { logger: make({}), records: recs };
}

t.test("accessLog: false writes no access record; logFunction replaces the access log", async (t) => {
  const quiet = collecting();
  const off = new Application([["/", Hello]], { logger: quiet.logger, accessLog: false });
  const res = await off.inject({ url: "/" });
  t.equal(res.status, 200);
  t.ok(res.headers["x-request-id"], "the id is still sent");
  t.same(quiet.records, []);
  const seen: string[] = [];
  const custom = collecting();
  const replaced = new Application([["/", Hello]], { logger: custom.logger, logFunction: (h) => seen.push(`${h.getStatus()} ${h.requestId}`) });
  const r2 = await replaced.inject({ url: "/" });
  t.same(seen, [`200 ${String(r2.headers["x-request-id"])}`]);
  t.same(custom.records, []);
});

t.test("requestIdHeader renames the header read and echoed; false ignores the client's", async (t) => {
  const renamed = new Application([url("/", Hello)], { requestIdHeader: "X-Trace", accessLog: false });
  const a = await renamed.inject({ url: "/", headers: { "x-trace": "abc" } });
  t.equal(a.headers["x-trace"], "abc");
  const ignoring = new Application([["/", Hello]], { requestIdHeader: false, accessLog: false });
  const b = await ignoring.inject({ url: "/", headers: { "x-request-id": "abc" } });
  t.not(b.headers["x-request-id"], "abc");
  t.match(b.headers["x-request-id"], /^[0-9a-f]{8}-/);
});

t.test("with no logger setting, records go to the process-wide logger (setLogger)", async (t) => {
  const captured = collecting();
  const previous = setLogger(captured.logger);
  t.teardown(() => { setLogger(previous); });
  const app = new Application([["/", Hello]]);
  const res = await app.inject({ url: "/" });
  t.match(captured.records, [{ level: "info", reqId: res.headers["x-request-id"], status: 200, route: "/" }]);
});

t.test("an access record is one valid JSON line whatever the method and path", async (t) => {
  const { createLogger } = await import("../../core/log.ts");
  let text = "";
  const logger = createLogger({ format: "json", destination: { write: (chunk: string) => { text += chunk; } }, flushMs: 1 });
  const app = new Application([["/(.*)", Hello]], { logger });
  const method = "M-SEARCH"; // node's parser passes only the methods it knows
  const path = '/a"b\\c';
  const res = await app.inject({ method, url: path });
  t.equal(res.status, 405);
  // A method that is not an HTTP token never reaches the app, nor the log.
  await t.rejects(app.inject({ method: 'GE"T', url: "/" }), /HTTP token/);
  await new Promise((resolve) => setTimeout(resolve, 30));
  const lines = text.split("\n").filter((line) => line !== "");
  t.equal(lines.length, 1, text);
  const record = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.match(record, { method, path, status: 405, msg: `405 ${method} ${path} (127.0.0.1) ` });
});
