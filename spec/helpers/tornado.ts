/**
 * Support for the specs ported from Tornado's own test suite (`spec/tornado/`): an app served on
 * a free loopback port for the rest of a test (Tornado's `AsyncHTTPTestCase`), a `fetch` that
 * keeps what a browser-grade client would hide (the reason phrase, compressed bodies), and the
 * framework's log captured for `ExpectLog`-style assertions. Uses the public API only.
 */
import { request } from "node:http";
import type { Test } from "tap";
import { HTTPServer, setLogger, type HTTPServerOptions, type RequestListener, type Servable } from "../../core/index.ts";

/** A served app: its port and base URL. */
export interface Served {
  readonly port: number;
  readonly base: string;
  readonly server: HTTPServer;
}

/** Serves `app` on `127.0.0.1:0` until the test ends. */
export async function serve(t: Test, app: Servable | RequestListener, options: HTTPServerOptions = {}): Promise<Served> {
  const server = new HTTPServer(app, options);
  await server.listen(0, "127.0.0.1");
  t.teardown(async () => {
    server.closeAllConnections();
    await server.stop(0);
  });
  const port = server.address()!.port;
  return { port, base: `http://127.0.0.1:${port}`, server };
}

/** A response as Tornado's `self.fetch` gives it: code, reason, headers, raw body. */
export interface Fetched {
  readonly code: number;
  readonly reason: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  readonly text: string;
}

/** Options of {@link fetch}. */
export interface FetchOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/**
 * One request on a new connection (`Connection: close`), through node's client: no automatic
 * decompression, and the status line's reason phrase is kept.
 */
export function fetch(served: Served, path: string, options: FetchOptions = {}): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1", port: served.port, path, method: options.method ?? "GET",
      headers: { connection: "close", ...options.headers }, agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", reject);
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ code: res.statusCode ?? 0, reason: res.statusMessage ?? "", headers: res.headers, body, text: body.toString("utf8") });
      });
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

/** The framework's log lines (`level: message`) for the rest of the test. */
export function expectLog(t: Test): string[] {
  const lines: string[] = [];
  const previous = setLogger((level, message) => { lines.push(`${level}: ${message}`); });
  t.teardown(() => { setLogger(previous); });
  return lines;
}
