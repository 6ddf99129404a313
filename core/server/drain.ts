/**
 * Graceful draining, for SIGTERM/SIGINT and rolling reloads: stop taking connections, answer
 * what is in flight with `Connection: close`, close keep-alive connections only once they have
 * stayed idle a moment, and cut what is left after the grace period.
 *
 * Why not `http.Server.close()`: since Node 19 it closes every idle keep-alive connection at
 * once, and a client that is just sending its next request on one of them gets a reset ("socket
 * hang up"). Under continuous keep-alive load that is nearly every drain.
 */
import type { Server as HttpServer } from "node:http";
import { Server as NetServer, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import type { HTTPServer } from "./httpserver.ts";

/** While draining, a connection idle this long is closed: one in use gets its `Connection: close` first (ms). */
const LINGER_MS = 200;
/** How often the drain looks at what is left (ms). */
const POLL_MS = 25;

/** Drains a listening server: resolves once its connections are closed, or cut after `timeout` ms. */
export function drainListening(server: HTTPServer, timeout: number): Promise<void> {
  const http = server.httpServer;
  if (http === null || !http.listening) return server.stop(timeout);
  // net.Server's own close: stops accepting and calls back once every connection has closed,
  // without http.Server's immediate cut of idle connections.
  const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(http, () => resolve()));
  return drain(server, http, closed, timeout, () => {});
}

/** Drains a server fed with handed-over `sockets` (it never listened): resolves once they are all closed. */
export async function drainHanded(server: HTTPServer, http: HttpServer, sockets: ReadonlySet<Socket>, timeout: number): Promise<void> {
  const closed = (async () => {
    while (sockets.size > 0) await delay(POLL_MS);
  })();
  return drain(server, http, closed, timeout, () => {
    // Upgraded (WebSocket) sockets are no longer the http server's to cut.
    for (const socket of sockets) socket.destroy();
  });
}

async function drain(server: HTTPServer, http: HttpServer, closed: Promise<void>, timeout: number, cut: () => void): Promise<void> {
  server.context.draining = true;
  let done = false;
  void closed.then(() => { done = true; });
  const start = performance.now();
  while (!done) {
    const elapsed = performance.now() - start;
    if (elapsed >= timeout) {
      http.closeAllConnections();
      cut();
      return;
    }
    if (elapsed >= LINGER_MS) http.closeIdleConnections();
    await Promise.race([closed, delay(POLL_MS)]);
  }
}
