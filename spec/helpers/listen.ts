/**
 * `listen(t, app)`: serves an app on a free loopback port for the rest of a test and tears it
 * down (every connection cut, server stopped) in `t.teardown`. For specs that need the port
 * itself (raw sockets) across many steps, where `withServer`'s callback shape gets in the way.
 */
import type { Test } from "tap";
import { HTTPServer, type RequestListener, type Servable } from "../../core/server/httpserver.ts";
import type { HTTPServerOptions } from "../../core/server/options.ts";

/**
 * Listens on `127.0.0.1:0` and resolves to the port and the server.
 *
 * @example
 * const { port } = await listen(t, app, { headersTimeout: 500 });
 */
export async function listen(t: Test, app: Servable | RequestListener, options: HTTPServerOptions = {}): Promise<{ port: number; server: HTTPServer }> {
  const server = new HTTPServer(app, options);
  await server.listen(0, "127.0.0.1");
  t.teardown(async () => {
    server.closeAllConnections();
    await server.stop(0);
  });
  return { port: server.address()!.port, server };
}
