/**
 * The app `make cluster-demo` runs behind nginx: one instance per invocation, each a supervisor
 * of `PROCESSES` children (`start(n)`), with `xheaders` on so the client's address survives the
 * proxy. Access logging is off: the demo counts requests itself.
 *
 * Environment: `PORT`, `INSTANCE` (a name, default "a"), `PROCESSES` (default 2),
 * `DRAIN_TIMEOUT` (ms, default 5000). The supervisor prints `instance <name> ready <pid>`.
 *
 * Routes: `/` → `hello from <instance>`; `/whoami` → JSON `{ instance, pid, taskId, remoteIp,
 * forwardedFor }`; `/wait/<ms>` answers after ms (a request in flight); `/health` → `HealthHandler`
 * (200 while serving, 503 while draining).
 */
import { Application, HTTPServer, RequestHandler, taskId } from "../core/index.ts";
import { HealthHandler, MetricsHandler } from "../handlers/index.ts";

const instance = process.env["INSTANCE"] ?? "a";

class MainHandler extends RequestHandler {
  get(): void {
    this.write(`hello from ${instance}`);
  }
}

class WhoAmIHandler extends RequestHandler {
  get(): void {
    this.write({
      instance,
      pid: process.pid,
      taskId: taskId(),
      remoteIp: this.request.remoteIp,
      forwardedFor: this.request.headers["x-forwarded-for"] ?? null,
    });
  }
}

class WaitHandler extends RequestHandler {
  async get(ms: string): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, Math.min(Number(ms), 10_000)));
    this.write({ instance, pid: process.pid, waited: Number(ms) });
  }
}

/** The demo app: its routes, with the access log off. */
function makeClusterApp(): Application {
  return new Application([
    ["/", MainHandler],
    ["/whoami", WhoAmIHandler],
    ["/wait/(\\d+)", WaitHandler],
    ["/health", HealthHandler],
    ["/metrics", MetricsHandler],
  ], { logFunction: () => {} });
}

const port = Number(process.env["PORT"] ?? 8001);
const processes = Number(process.env["PROCESSES"] ?? 2);
const server = new HTTPServer(makeClusterApp(), { xheaders: true, drainTimeout: Number(process.env["DRAIN_TIMEOUT"] ?? 5000) });
server.bind(port, "127.0.0.1");
await server.start(processes);
if (taskId() === null) console.log(`instance ${instance} ready ${process.pid}`);
