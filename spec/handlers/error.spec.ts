// ErrorHandler over real sockets: its status for any method, before the method and XSRF
// checks, as a rule and as the default handler.
import t from "tap";
import { Application } from "../../core/web/app.ts";
import { ErrorHandler } from "../../handlers/error.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog } from "../helpers/log.ts";
import { rawRequest } from "./raw-request.ts";

t.test("a rule with ErrorHandler answers its status to every method, even a POST with xsrfCookies on", async (t) => {
  captureLog(t);
  const app = new Application([["/gone", ErrorHandler, { statusCode: 410 }]], {
    xsrfCookies: true, defaultHandlerClass: ErrorHandler, defaultHandlerArgs: { statusCode: 404 },
  });
  const { port } = await listen(t, app);
  const base = `http://127.0.0.1:${port}`;
  for (const method of ["GET", "HEAD", "POST", "DELETE", "PROPFIND"]) {
    t.equal((await rawRequest(base, "/gone", { method })).status, 410, `${method} /gone`);
  }
  const page = await rawRequest(base, "/gone");
  t.match(page.text(), /410: Gone/);
  t.equal((await rawRequest(base, "/unknown", { method: "POST" })).status, 404, "default handler: 404, not a 403 for the missing XSRF token");
  const json = await rawRequest(base, "/gone", { headers: { Accept: "application/json" } });
  t.same(JSON.parse(json.text()), { status: 410, reason: "Gone" });
});

t.test("ErrorHandler without statusCode is a 500, logged", async (t) => {
  const lines = captureLog(t);
  const app = new Application([["/bad", ErrorHandler]]);
  const { port } = await listen(t, app);
  t.equal((await rawRequest(`http://127.0.0.1:${port}`, "/bad")).status, 500);
  t.match(lines.map((l) => l.message).join("\n"), /statusCode/);
});
