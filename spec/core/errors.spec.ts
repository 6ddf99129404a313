// Errors as the client sees them: HTTPError (status, reason, logMessage never sent), Finish,
// the default error page (HTML, or JSON when Accept prefers it), uncaught errors → 500 with the
// stack only under serveTraceback/debug, writeError overrides and a throwing writeError (500,
// empty body), errors after the headers went out (connection cut). The server keeps serving.
import t from "tap";
import { Application, Finish, HTTPError, MissingArgumentError, RequestHandler, withServer } from "../../core/index.ts";
import { ErrorCode } from "../../core/errors.ts";
import { exchange } from "../helpers/raw-http.ts";
import { captureLog, logText } from "../helpers/log.ts";

class Raises extends RequestHandler {
  async get(kind: string): Promise<void> {
    this.setHeader("X-Lost", "set before the error");
    this.write("partial output that must not be sent");
    switch (kind) {
      case "http": throw new HTTPError(403, "secret detail %s");
      case "reason": throw new HTTPError(418, undefined, { reason: "Short And Stout" });
      case "missing": throw new MissingArgumentError("thing");
      case "plain": throw new Error("internal secret");
      case "string": throw "a thrown string";
      case "rejects": await Promise.reject(new Error("rejected secret"));
        break;
      case "finish": throw new Finish();
      case "finish-chunk": throw new Finish("finished early");
      case "send-error": this.sendError(409); return;
      case "bad-status": throw new HTTPError(1000);
      case "bad-reason": throw new HTTPError(400, undefined, { reason: "bad\r\nX-Injected: 1" });
    }
  }
}

class PrepareRaises extends RequestHandler {
  override prepare(): void { throw new HTTPError(401); }
  get(): void { this.write("never"); }
}

class CustomError extends RequestHandler {
  get(): void { throw new HTTPError(404, "looked everywhere"); }
  override writeError(status: number, info: { error?: unknown }): void {
    this.setHeader("X-Custom", "yes");
    this.finish({ custom: status, isHttp: info.error instanceof HTTPError });
  }
}

class WriteErrorThrows extends RequestHandler {
  get(): void { throw new Error("first"); }
  override writeError(): void {
    this.write("half an error page");
    throw new Error("writeError broke");
  }
}

class AfterFlush extends RequestHandler {
  async get(): Promise<void> {
    this.write("streamed part;");
    await this.flush();
    throw new Error("too late for a status");
  }
}

class AfterFinish extends RequestHandler {
  get(): void {
    this.finish("complete");
    throw new Error("after the fact");
  }
}

const rules = [
  ["/raise/([\\w-]+)", Raises],
  ["/prepare", PrepareRaises],
  ["/custom", CustomError],
  ["/write-error-throws", WriteErrorThrows],
  ["/after-flush", AfterFlush],
  ["/after-finish", AfterFinish],
] as const;
const app = new Application(rules);
const traceApp = new Application(rules, { serveTraceback: true });
const debugApp = new Application(rules, { debug: true });

t.test("HTTPError: its status and the default HTML page; logMessage logged, never sent; output so far dropped", async (t) => {
  const lines = captureLog(t);
  const res = await app.inject({ url: "/raise/http" });
  t.equal(res.status, 403);
  t.equal(res.headers["content-type"], "text/html; charset=UTF-8");
  t.equal(res.text(), "<html><title>403: Forbidden</title><body>403: Forbidden</body></html>");
  t.equal(res.headers["x-lost"], undefined, "headers set before the error are cleared");
  t.notMatch(res.text(), "secret");
  t.match(logText(lines), "secret detail %s");
});

t.test("the default error page is JSON when Accept prefers it, HTML on a tie or by default", async (t) => {
  captureLog(t);
  const json = ["application/json", "application/json, text/html;q=0.9", "text/html;q=0.5, application/*", "*/*;q=0.1, application/json"];
  for (const accept of json) {
    const res = await app.inject({ url: "/raise/http", headers: { accept } });
    t.equal(res.headers["content-type"], "application/json; charset=UTF-8", accept);
    t.same(res.json(), { status: 403, reason: "Forbidden" }, accept);
  }
  const html = ["text/html", "*/*", "text/html, application/json", "application/json;q=0.5, text/html", "application/xml", "text/*, application/json;q=0.2"];
  for (const accept of html) {
    const res = await app.inject({ url: "/raise/http", headers: { accept } });
    t.equal(res.headers["content-type"], "text/html; charset=UTF-8", accept);
  }
});

t.test("a custom reason appears in the status line and the page", async (t) => {
  await withServer(app, async (base) => {
    const { responses } = await exchange(Number(new URL(base).port), "GET /raise/reason HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", { responses: 1 });
    t.equal(responses[0]?.status, 418);
    t.equal(responses[0]?.reason, "Short And Stout");
    t.equal(responses[0]?.body.toString(), "<html><title>418: Short And Stout</title><body>418: Short And Stout</body></html>");
  });
});

t.test("MissingArgumentError is a 400 naming the argument", async (t) => {
  captureLog(t);
  const res = await app.inject({ url: "/raise/missing" });
  t.equal(res.status, 400);
  t.match(res.text(), "Missing argument thing");
  const err = new MissingArgumentError("thing");
  t.equal(err.code, ErrorCode.MISSING_ARGUMENT);
  t.equal(err.argName, "thing");
  t.ok(err instanceof HTTPError);
});

t.test("any other thrown or rejected error is a 500 with no stack or message sent", async (t) => {
  const lines = captureLog(t);
  for (const kind of ["plain", "string", "rejects"]) {
    const res = await app.inject({ url: `/raise/${kind}` });
    t.equal(res.status, 500, kind);
    t.equal(res.text(), "<html><title>500: Internal Server Error</title><body>500: Internal Server Error</body></html>", kind);
  }
  const log = logText(lines);
  t.match(log, "internal secret", "the error is logged");
  t.match(log, "rejected secret");
  t.match(log, /at .*errors\.spec\.ts/, "with its stack");
});

t.test("serveTraceback (or debug) sends the stack, HTML-escaped or in JSON", async (t) => {
  captureLog(t);
  for (const a of [traceApp, debugApp]) {
    const res = await a.inject({ url: "/raise/plain" });
    t.equal(res.status, 500);
    t.match(res.text(), /<pre>Error: internal secret\n\s+at /);
    const json = await a.inject({ url: "/raise/plain", headers: { accept: "application/json" } });
    t.match(json.json(), { status: 500, reason: "Internal Server Error", traceback: /^Error: internal secret/ });
  }
  const http = await traceApp.inject({ url: "/raise/http" });
  t.notMatch(http.text(), "<pre>", "an HTTPError sends no stack even then");
});

t.test("throw new Finish() ends the request normally with what was written", async (t) => {
  const res = await app.inject({ url: "/raise/finish" });
  t.equal(res.status, 200);
  t.equal(res.text(), "partial output that must not be sent");
  t.equal(res.headers["x-lost"], "set before the error");
  const chunk = await app.inject({ url: "/raise/finish-chunk" });
  t.equal(chunk.text(), "partial output that must not be sentfinished early");
  t.equal(new Finish().code, ErrorCode.FINISH);
});

t.test("sendError(status) from a method; an error in prepare() skips the method", async (t) => {
  captureLog(t);
  const res = await app.inject({ url: "/raise/send-error" });
  t.equal(res.status, 409);
  t.match(res.text(), "409: Conflict");
  const prep = await app.inject({ url: "/prepare" });
  t.equal(prep.status, 401);
  t.notMatch(prep.text(), "never");
});

t.test("an overridden writeError shapes the page", async (t) => {
  captureLog(t);
  const res = await app.inject({ url: "/custom" });
  t.equal(res.status, 404);
  t.equal(res.headers["x-custom"], "yes");
  t.same(res.json(), { custom: 404, isHttp: true });
});

t.test("a writeError that throws → 500 with an empty body, and it is logged", async (t) => {
  const lines = captureLog(t);
  const res = await app.inject({ url: "/write-error-throws" });
  t.equal(res.status, 500);
  t.equal(res.body.length, 0);
  t.match(logText(lines), "writeError broke");
});

t.test("an invalid status or reason in an HTTPError still answers (500, or the status with reason Unknown), never crashes", async (t) => {
  captureLog(t);
  await withServer(app, async (base) => {
    const port = Number(new URL(base).port);
    for (const [kind, status, reason] of [["bad-status", 500, "Internal Server Error"], ["bad-reason", 400, "Unknown"]] as const) {
      const ex = await exchange(port, `GET /raise/${kind} HTTP/1.1\r\nHost: x\r\n\r\nGET /raise/http HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, { responses: 2 });
      t.equal(ex.responses[0]?.status, status, kind);
      t.equal(ex.responses[0]?.reason, reason, kind);
      t.notMatch(ex.raw, /x-injected/i, `${kind}: nothing injected`);
      const next = ex.responses[1]?.status ?? (await fetch(`${base}/raise/http`)).status;
      t.equal(next, 403, `${kind}: the server keeps serving`);
    }
  });
});

t.test("an error after the headers were flushed cuts the connection (no second status line)", async (t) => {
  const lines = captureLog(t);
  await withServer(app, async (base) => {
    const port = Number(new URL(base).port);
    const ex = await exchange(port, "GET /after-flush HTTP/1.1\r\nHost: x\r\n\r\n");
    t.ok(ex.closed, "the connection is closed");
    t.equal(ex.responses.length, 0, "the chunked body never completes: the client can tell it failed");
    t.match(ex.raw, /^HTTP\/1\.1 200 /);
    t.equal((ex.raw.match(/HTTP\/1\.1/g) ?? []).length, 1);
    t.equal((await fetch(`${base}/raise/http`)).status, 403, "the server keeps serving");
  });
  t.match(logText(lines), "too late for a status");
});

t.test("an error after finish() is logged; the response already sent stands", async (t) => {
  const lines = captureLog(t);
  const res = await app.inject({ url: "/after-finish" });
  t.equal(res.status, 200);
  t.equal(res.text(), "complete");
  for (let i = 0; i < 20 && !logText(lines).includes("after the fact"); i++) await new Promise((r) => setImmediate(r));
  t.match(logText(lines), "after the fact");
});

t.test("HTTPError's fields and message", async (t) => {
  const err = new HTTPError(404, "no user %s", { reason: "No Such User" });
  t.equal(err.status, 404);
  t.equal(err.code, ErrorCode.HTTP);
  t.equal(err.logMessage, "no user %s");
  t.equal(err.reason, "No Such User");
  t.match(err.message, "HTTP 404: No Such User");
  t.equal(new HTTPError().status, 500);
});
