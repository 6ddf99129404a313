/**
 * The demo app (the seed's experiment): `/` answers at once; `/sleep/N` holds its process's event
 * loop for about N × 0.1 s of CPU work; `/tsleep/N` does the same work on the thread executor, so
 * the loop stays free. `/json` answers JSON, `/health` 200 (503 while draining). `/items` is a
 * validated JSON resource (`scripts/items.ts`), described at `/openapi.json`.
 *
 * Environment: `PORT` (default 8888), `PROCESSES` (default: one per CPU; `1` for a single process).
 *
 *   make run                       # then, in other terminals:
 *   curl localhost:8888/sleep/30   # about 3 s of CPU work on one process
 *   curl localhost:8888/           # answers at once with start(n > 1); waits with PROCESSES=1
 */
import {
  Application, HealthHandler, HTTPServer, OpenAPIHandler, RequestHandler, ThreadPoolExecutor, cpuCount, taskId, url,
} from "../core/index.ts";
import { spin } from "./tasks.ts";
import { ItemHandler, ItemsHandler } from "./items.ts";

// Threads start on first use: the supervisor of start(n) never submits, so it starts none.
const pool = new ThreadPoolExecutor({ module: new URL("./tasks.ts", import.meta.url) });

class MainHandler extends RequestHandler {
  get(): void {
    this.write("this is main");
  }
}

class SleepHandler extends RequestHandler {
  get(n: string): void {
    this.write(`Awake! ${spin(Number(n))}`);
  }
}

class ThreadSleepHandler extends RequestHandler {
  async get(n: string): Promise<void> {
    this.write(`Awake! ${await pool.submit<number>("spin", Number(n))}`);
  }
}

class JsonHandler extends RequestHandler {
  get(): void {
    this.write({ message: "hello", pid: process.pid });
  }
}

/** The demo's application; `blockingThreshold` logs handlers that hold the loop over 100 ms. */
export function makeApp(): Application {
  return new Application([
    ["/", MainHandler],
    ["/sleep/(\\d+)", SleepHandler],
    ["/tsleep/(\\d+)", ThreadSleepHandler],
    ["/json", JsonHandler],
    ["/health", HealthHandler],
    ["/items", ItemsHandler],
    url("/items/(?<id>\\d+)", ItemHandler, undefined, "item"),
    ["/openapi.json", OpenAPIHandler, { info: { title: "typhoon demo", version: "0.1.0" } }],
  ], { blockingThreshold: 100 });
}

const port = Number(process.env["PORT"] ?? 8888);
const processes = process.env["PROCESSES"] === undefined ? cpuCount() : Number(process.env["PROCESSES"]);
const server = new HTTPServer(makeApp());
server.bind(port);
await server.start(processes);
const address = server.address();
if (taskId() === null) console.log(`typhoon demo on http://127.0.0.1:${address?.port ?? port} (pid ${process.pid}, ${processes} process${processes === 1 ? "" : "es"})`);
