/**
 * What `HTTPServer` adds to node:http's handling of a connection, as Tornado's HTTP/1 server
 * behaves: a connection that never sends a request is closed after `idleConnectionTimeout`
 * (node only times out connections that served one); responses carry no deprecated
 * `Keep-Alive: timeout=N` header (RFC 9112 dropped it) unless a handler sets one; and an
 * `Upgrade` offer other than WebSocket (`h2c`, which `curl --http2` sends) is ignored, as
 * RFC 9110 §7.8 allows: the request is served as HTTP/1.1, body included, and the connection
 * stays usable.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";

/**
 * Drops node's `Keep-Alive: timeout=N` header from a response (RFC 9112 dropped it; linters flag
 * it). node writes it when the response's `_keepAliveTimeout` is set, which it copies from the
 * server into every response; the idle timeout itself is the server's and still applies. One
 * property store per request: a `ServerResponse` subclass with an accessor for it measured 11 %
 * slower on hello world (per server CPU-second).
 */
export function quietKeepAlive(res: ServerResponse): void {
  (res as unknown as { _keepAliveTimeout: number })._keepAliveTimeout = 0;
}

/**
 * Closes `socket` if it has not sent a byte `ms` after it connected. Once a request arrived,
 * node's own timeouts (head, keep-alive idle) govern the connection.
 */
export function closeIfUnused(socket: Socket, ms: number): void {
  if (ms <= 0) return;
  const timer = setTimeout(() => {
    if (socket.bytesRead === 0) socket.destroy();
  }, ms);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

/** Whether an `Upgrade` request asks for WebSocket (the only upgrade typhoon performs). */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return upgrade !== undefined && upgrade.toLowerCase() === "websocket";
}

// Connection options that belong to an upgrade offer; what remains of `Connection` is kept.
const OFFER_TOKENS = /^(upgrade|http2-settings)$/i;

/**
 * Ignores an upgrade offer: the request head is rebuilt without `Upgrade`, `HTTP2-Settings` and
 * their `Connection` options, put back in front of the bytes node had not parsed (`head`: the
 * body and any pipelined requests), and the socket is handed back to `server` as a fresh
 * connection. node then parses and serves it as an ordinary HTTP/1.1 request.
 */
export function ignoreUpgradeOffer(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const raw = req.rawHeaders;
  let text = `${req.method ?? "GET"} ${req.url ?? "/"} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === "upgrade" || lower === "http2-settings") continue;
    let value = raw[i + 1]!;
    if (lower === "connection") {
      value = value.split(",").map((v) => v.trim()).filter((v) => v !== "" && !OFFER_TOKENS.test(v)).join(", ");
      if (value === "") continue;
    }
    text += `${name}: ${value}\r\n`;
  }
  // Header bytes arrived as latin1 strings; they go back byte for byte.
  socket.unshift(Buffer.concat([Buffer.from(`${text}\r\n`, "latin1"), head]));
  // An HTTPS server parses requests from 'secureConnection' (the TLS socket), plain HTTP from 'connection'.
  server.emit((socket as { encrypted?: boolean }).encrypted === true ? "secureConnection" : "connection", socket);
}
