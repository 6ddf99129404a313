// HealthHandler over real sockets: 200 while serving, 503 with Connection: close once the
// server drains (HTTPServer.stop()), never cached.
import t from "tap";
import { Application } from "../../core/web/app.ts";
import { HealthHandler } from "../../handlers/health.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog } from "../helpers/log.ts";
import { rawRequest } from "./raw-request.ts";

let openGate: () => void = () => undefined;
let gateReached: () => void = () => undefined;

// A health check that is held in prepare() until the spec opens the gate: it is in flight when
// stop() begins, so it is answered while the server drains.
class GatedHealthHandler extends HealthHandler {
  override async prepare(): Promise<void> {
    gateReached();
    await new Promise<void>((resolve) => { openGate = resolve; });
  }
}

t.test("200 {status: ok} while serving, without an ETag or cache", async (t) => {
  captureLog(t);
  const { port } = await listen(t, new Application([["/health", HealthHandler]]));
  const r = await rawRequest(`http://127.0.0.1:${port}`, "/health");
  t.equal(r.status, 200);
  t.same(JSON.parse(r.text()), { status: "ok" });
  t.equal(r.headers["cache-control"], "no-store");
  t.equal(r.headers.etag, undefined);
});

t.test("503 {status: draining} with Connection: close while HTTPServer.stop() drains", async (t) => {
  captureLog(t);
  const { port, server } = await listen(t, new Application([["/health", HealthHandler], ["/gated", GatedHealthHandler]]));
  const reached = new Promise<void>((resolve) => { gateReached = resolve; });
  const answer = rawRequest(`http://127.0.0.1:${port}`, "/gated");
  await reached;
  const stopped = server.stop(5000);
  t.equal(server.context.draining, true);
  openGate();
  const r = await answer;
  t.equal(r.status, 503);
  t.equal(r.headers.connection, "close");
  t.same(JSON.parse(r.text()), { status: "draining" });
  await stopped;
});
