/**
 * Test helpers: `withServer` runs a callback against an app listening on an unused port and
 * closes every connection afterwards (Tornado's `AsyncHTTPTestCase`, as a function).
 */
import { HTTPServer, type RequestListener, type Servable } from "./server/httpserver.ts";
import type { HTTPServerOptions } from "./server/options.ts";

/**
 * Serves `app` on `127.0.0.1` at a free port, runs `fn(baseUrl)`, then closes the server and
 * every connection, whether `fn` succeeded or threw.
 *
 * @example
 * await withServer(app, async (base) => {
 *   const res = await fetch(`${base}/`);
 *   t.equal(await res.text(), "this is main");
 * });
 */
export async function withServer<T>(app: Servable | RequestListener, fn: (baseUrl: string, server: HTTPServer) => Promise<T>,
  serverOptions?: HTTPServerOptions): Promise<T> {
  const server = new HTTPServer(app, serverOptions);
  await server.listen(0, "127.0.0.1");
  const port = server.address()!.port;
  try {
    return await fn(`http://127.0.0.1:${port}`, server);
  } finally {
    server.closeAllConnections();
    await server.stop(0);
  }
}
