/**
 * The demo app (the seed's experiment): `/` answers at once, `/sleep/N` holds the event loop for
 * about N × 0.1 s of CPU work. `PORT` (default 8888).
 *
 *   make run            # then, in two terminals:
 *   curl localhost:8888/sleep/30
 *   curl localhost:8888/          # waits for the sleep in a single process
 */
import { Application, HTTPServer, RequestHandler } from "../core/index.ts";
import { spin } from "./tasks.ts";

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

class JsonHandler extends RequestHandler {
  get(): void {
    this.write({ message: "hello", pid: process.pid });
  }
}

export function makeApp(): Application {
  return new Application([
    ["/", MainHandler],
    ["/sleep/(\\d+)", SleepHandler],
    ["/json", JsonHandler],
  ], { blockingThreshold: 100 });
}

const port = Number(process.env["PORT"] ?? 8888);
const server = new HTTPServer(makeApp());
server.bind(port);
await server.start(1);
console.log(`typhoon demo listening on http://127.0.0.1:${port} (pid ${process.pid})`);
