// FallbackHandler over real sockets: an Express 5 app mounted under typhoon's routing, with
// typhoon's own routes taking precedence and the body left for Express to read.
import t from "tap";
import express from "express";
import { Application } from "../../core/web/app.ts";
import { RequestHandler } from "../../core/web/handler.ts";
import { FallbackHandler } from "../../handlers/fallback.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog } from "../helpers/log.ts";
import { rawRequest } from "./raw-request.ts";

class NativeHandler extends RequestHandler {
  get(): void {
    this.write("typhoon");
  }
}

function legacyApp(): express.Express {
  const legacy = express();
  legacy.use(express.json());
  legacy.get("/legacy/hello/:name", (req, res) => { res.send(`express says hi to ${req.params["name"]}`); });
  legacy.post("/legacy/echo", (req, res) => { res.json({ got: req.body as unknown }); });
  legacy.use((_req, res) => { res.status(404).send("express 404"); });
  return legacy;
}

t.test("an Express app answers what typhoon's rules leave to it; typhoon's routes come first", async (t) => {
  captureLog(t);
  const app = new Application([["/native", NativeHandler], ["/.*", FallbackHandler, { fallback: legacyApp() }]]);
  const { port } = await listen(t, app);
  const base = `http://127.0.0.1:${port}`;
  const native = await rawRequest(base, "/native");
  t.equal(native.text(), "typhoon");
  const hello = await rawRequest(base, "/legacy/hello/ann?x=1");
  t.equal(hello.status, 200);
  t.equal(hello.text(), "express says hi to ann");
  t.match(hello.headers["x-powered-by"], /Express/, "Express wrote the response");
  const echo = await rawRequest(base, "/legacy/echo", { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"a":[1,2]}' });
  t.same(JSON.parse(echo.text()), { got: { a: [1, 2] } }, "the body was left for Express to read");
  const missing = await rawRequest(base, "/legacy/nothing", { method: "DELETE" });
  t.equal(missing.status, 404);
  t.equal(missing.text(), "express 404");
});

t.test("keep-alive connections go on after a fallback response", async (t) => {
  captureLog(t);
  const app = new Application([["/native", NativeHandler], ["/.*", FallbackHandler, { fallback: legacyApp() }]]);
  const { port } = await listen(t, app);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 3; i++) {
    t.equal(await (await fetch(`${base}/legacy/hello/${i}`)).text(), `express says hi to ${i}`);
    t.equal(await (await fetch(`${base}/native`)).text(), "typhoon");
  }
});

t.test("FallbackHandler without a fallback function is a 500", async (t) => {
  captureLog(t);
  const app = new Application([["/.*", FallbackHandler, {}]]);
  const { port } = await listen(t, app);
  t.equal((await rawRequest(`http://127.0.0.1:${port}`, "/x")).status, 500);
});
