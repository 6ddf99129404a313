/**
 * `WebSocketHandler`: Tornado's WebSocket handler on the `ws` package. The upgrade request runs
 * the normal handler lifecycle (initialize, current user, `prepare()` — which may answer 401 —
 * then `get()`), so a rejected handshake is an ordinary HTTP error response on the raw socket.
 * `get()` checks the headers and the origin, then hands the socket to `ws` and calls `open()`.
 * As in Tornado: a bad version is a 426, headers set before the handshake go on the 101, HTTP
 * output methods throw once the socket is open, no subprotocol is chosen unless
 * `selectSubprotocol()` chooses one, and permessage-deflate is negotiated only when
 * `getCompressionOptions()` asks for it.
 * The class registers itself with the upgrade seam (`core/web/upgrade.ts`), so the application
 * routes upgrade requests to it without importing this file.
 */
import type { IncomingMessage } from "node:http";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { ErrorCode, HTTPError, TyphoonError } from "../core/errors.ts";
import { RequestHandler, drainStateOf } from "../core/web/handler.ts";
import { log } from "../core/log.ts";
import { acceptUpgrades, takeUpgrade } from "../core/web/upgrade.ts";

/** Tornado's default `websocket_max_message_size`: 10 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);
// One `ws` server (it holds no sockets, only the handshake logic) per message-size limit and
// compression setting.
const servers = new Map<string, WebSocketServer>();
// What a handshake in progress adds to the 101 (headers set before it) and the subprotocol its
// handler chose, by request: `ws` asks for both while it writes the 101.
const handshakes = new WeakMap<IncomingMessage, { headers: string[]; protocol: string | null }>();
// Handlers whose socket is open: their HTTP output methods throw.
const opened = new WeakSet<WebSocketHandler>();
// Header names set on a handler before the handshake, lower-cased → as written. A WeakMap, not
// a field: setDefaultHeaders() runs in the base constructor, before subclass fields exist.
const headerNames = new WeakMap<WebSocketHandler, Map<string, string>>();
// Sec-WebSocket-Key: 16 random bytes in base64 (RFC 6455 §4.2.1).
const KEY = /^[+/0-9A-Za-z]{22}==$/;
// Versions `ws` speaks; others get 426 with the one to use (RFC 6455 §4.4).
const VERSIONS = new Set(["8", "13"]);


/** Raised by `writeMessage` on a connection that is closed (Tornado's `WebSocketClosedError`). */
export class WebSocketClosedError extends TyphoonError {
  constructor() {
    super(ErrorCode.WEBSOCKET_CLOSED, "The WebSocket is closed");
  }
}

/**
 * A WebSocket endpoint. Override `open`, `onMessage`, `onClose`; send with `writeMessage`.
 * Settings: `websocketPingInterval` (ms; a ping that often), `websocketPingTimeout` (ms without
 * a pong before the connection is closed; default 3 × interval, at least 30 s),
 * `websocketMaxMessageSize` (bytes, default 10 MiB; larger messages close with 1009).
 * When the server drains (`HTTPServer.stop()`), open sockets are closed with 1001.
 *
 * @example
 * class EchoHandler extends WebSocketHandler {
 *   override onMessage(message: string | Buffer): void {
 *     void this.writeMessage(message, typeof message !== "string");
 *   }
 * }
 */
export class WebSocketHandler extends RequestHandler {
  static override supportedMethods: readonly string[] = ["GET"];

  #ws: WebSocket | null = null;
  #closed = false;
  #stopListening: () => void = () => {};
  readonly #queue: (() => unknown)[] = [];
  #busy = false;
  #pingTimer: NodeJS.Timeout | null = null;
  #pongTimer: NodeJS.Timeout | null = null;
  /** The close code the peer sent (or 1006 for an abrupt end); `null` while open. */
  closeCode: number | null = null;
  /** The close reason the peer sent; `null` while open. */
  closeReason: string | null = null;
  /** The subprotocol `selectSubprotocol()` chose, or `null`. */
  selectedSubprotocol: string | null = null;

  /** Hook: the connection is open; gets the path groups like `get()` would. */
  open(..._args: unknown[]): void | Promise<void> {}

  /** Hook: a message arrived: a `string` for a text frame, a `Buffer` for a binary one. Awaited in order. */
  onMessage(_message: string | Buffer): void | Promise<void> {}

  /** Hook: the connection closed, whichever side closed it or however it ended. Called once. */
  onClose(): void {}

  /** Hook: a pong arrived. */
  onPong(_data: Buffer): void {}

  /** Hook: a ping arrived (the pong is sent automatically). Always bytes. */
  onPing(_data: Buffer): void {}

  /**
   * Hook: the subprotocol to speak, among those the client offered (`Sec-WebSocket-Protocol`),
   * or `null` for none. Called once, only when the client offers some. Default: none.
   */
  selectSubprotocol(_protocols: string[]): string | null {
    return null;
  }

  /**
   * Hook: permessage-deflate options (`{ compressionLevel?, memLevel? }`, Tornado's
   * `compression_level`/`mem_level`), or `null` for no compression (the default). Compression
   * is used when the client offers it too.
   */
  getCompressionOptions(): object | null {
    return null;
  }

  /**
   * Hook: whether to accept a browser's cross-origin handshake. The default accepts only the
   * same origin (the `Origin` host equals the `Host` header); refused → 403.
   */
  checkOrigin(origin: string): boolean {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return false;
    }
    return host.toLowerCase() === (this.request.headers.host ?? "").toLowerCase();
  }

  /** The handshake: validates it, then upgrades and calls `open(...args)`. */
  async get(...args: unknown[]): Promise<void> {
    const headers = this.request.headers;
    if ((headers.upgrade ?? "").toLowerCase() !== "websocket") throw new HTTPError(400, 'Can "Upgrade" only to "WebSocket".');
    if (!(headers.connection ?? "").toLowerCase().split(",").some((v) => v.trim() === "upgrade")) {
      throw new HTTPError(400, '"Connection" must be "Upgrade".');
    }
    const origin = headers.origin ?? header(headers["sec-websocket-origin"]);
    if (origin !== undefined && !this.checkOrigin(origin)) throw new HTTPError(403, "Cross origin websockets not allowed");
    if (!VERSIONS.has(header(headers["sec-websocket-version"]) ?? "")) {
      this.setStatus(426);
      this.setHeader("Sec-WebSocket-Version", "13");
      this.finish();
      return;
    }
    if (!KEY.test(header(headers["sec-websocket-key"]) ?? "")) throw new HTTPError(400, "Missing or invalid Sec-WebSocket-Key");
    const req = this.request.raw;
    const upgrade = takeUpgrade(req);
    if (upgrade === undefined) throw new HTTPError(400, "Not an upgrade request (served without an upgrade listener)");
    const protocol = this.#chooseSubprotocol(header(headers["sec-websocket-protocol"]));
    handshakes.set(req, { headers: this.#handshakeHeaders(), protocol });
    const server = this.#server();
    const { socket, head } = upgrade;
    const { res } = this.detach();
    res.removeAllListeners("finish");
    res.detachSocket(socket);
    await new Promise<void>((resolve) => {
      // `ws` answers an invalid handshake (bad key or version) itself and never calls back.
      socket.once("close", resolve);
      server.handleUpgrade(req, socket, head, (ws) => {
        socket.off("close", resolve);
        opened.add(this);
        // Listeners go on before the socket flows: frames that came with the head are next.
        this.#attach(ws);
        this.#enqueue(() => this.open(...args));
        resolve();
      });
      socket.resume();
    });
  }

  /**
   * Sends a message: text for a string, binary for bytes (or any message with `binary`), JSON
   * for an object. Resolves when it is written; throws `WebSocketClosedError` once closed.
   */
  writeMessage(message: string | Uint8Array | object, binary = false): Promise<void> {
    const ws = this.#ws;
    if (ws === null || this.#closed || ws.readyState !== ws.OPEN) return Promise.reject(new WebSocketClosedError());
    const data = typeof message === "string" || message instanceof Uint8Array ? message : JSON.stringify(message);
    return new Promise((resolve, reject) => {
      ws.send(data, { binary: binary || message instanceof Uint8Array }, (err) => {
        if (err) reject(this.#closed ? new WebSocketClosedError() : err);
        else resolve();
      });
    });
  }

  /** Sends a ping. */
  ping(data: string | Buffer = EMPTY): void {
    if (this.#ws === null || this.#closed) throw new WebSocketClosedError();
    this.#ws.ping(data);
  }

  /** Starts the closing handshake (code default 1000). Does nothing once closed. */
  close(code?: number, reason?: string): void {
    if (this.#ws === null || this.#closed) return;
    this.#ws.close(code ?? 1000, reason);
  }

  /** Whether the connection is closed (or closing). */
  get closed(): boolean {
    return this.#closed || this.#ws === null || this.#ws.readyState !== this.#ws.OPEN;
  }

  // ---- HTTP output is over once the socket is open (Tornado raises RuntimeError) -----------

  override write(chunk: string | Uint8Array | object): void {
    httpOutputAllowed(this);
    super.write(chunk);
  }

  override flush(): Promise<void> {
    httpOutputAllowed(this);
    return super.flush();
  }

  override finish(chunk?: string | Uint8Array | object): void {
    httpOutputAllowed(this);
    super.finish(chunk);
  }

  override redirect(url: string, permanent = false, status?: number): void {
    httpOutputAllowed(this);
    super.redirect(url, permanent, status);
  }

  override setStatus(status: number, reason?: string): void {
    httpOutputAllowed(this);
    super.setStatus(status, reason);
  }

  override setHeader(name: string, value: string | number | Date): void {
    httpOutputAllowed(this);
    super.setHeader(name, value);
    rememberHeader(this, name);
  }

  override addHeader(name: string, value: string | number | Date): void {
    httpOutputAllowed(this);
    super.addHeader(name, value);
    rememberHeader(this, name);
  }

  override clearHeader(name: string): void {
    httpOutputAllowed(this);
    super.clearHeader(name);
  }

  override setCookie(name: string, value: string, options?: Parameters<RequestHandler["setCookie"]>[2]): void {
    httpOutputAllowed(this);
    super.setCookie(name, value, options);
  }

  // ---- Internals ------------------------------------------------------------------------

  // Tornado calls select_subprotocol only when the client offers some; the choice must be one
  // of them (RFC 6455 §4.2.2).
  #chooseSubprotocol(offered: string | undefined): string | null {
    if (offered === undefined) return null;
    const protocols = offered.split(",").map((p) => p.trim()).filter((p) => p !== "");
    if (protocols.length === 0) return null;
    const chosen = this.selectSubprotocol(protocols);
    if (chosen === null) return null;
    if (!protocols.includes(chosen)) throw new TyphoonError(ErrorCode.WEBSOCKET_SUBPROTOCOL, `selectSubprotocol() chose ${JSON.stringify(chosen)}, which was not offered`);
    this.selectedSubprotocol = chosen;
    return chosen;
  }

  // Headers from setDefaultHeaders()/prepare() and cookies, as lines for the 101.
  #handshakeHeaders(): string[] {
    const lines: string[] = [];
    for (const [lower, name] of headerNames.get(this) ?? []) {
      if (lower === "content-type" || lower === "content-length") continue;
      const value = this.getHeader(lower);
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
    }
    for (const cookie of this.newCookieHeaders()) lines.push(`Set-Cookie: ${cookie}`);
    return lines;
  }

  #server(): WebSocketServer {
    const size = numberSetting(this.settings["websocketMaxMessageSize"]) ?? DEFAULT_MAX_MESSAGE_SIZE;
    const compression = this.getCompressionOptions();
    const key = compression === null ? String(size) : `${size} ${JSON.stringify(compression)}`;
    let server = servers.get(key);
    if (server === undefined) {
      server = new WebSocketServer({
        noServer: true, maxPayload: size, clientTracking: false, perMessageDeflate: deflateOptions(compression),
        // `ws` alone would accept the first offered protocol; the handler's choice is final.
        handleProtocols: (_protocols, req) => handshakes.get(req)?.protocol ?? false,
      });
      server.on("headers", (lines: string[], req: IncomingMessage) => {
        const extra = handshakes.get(req);
        if (extra !== undefined) lines.push(...extra.headers);
      });
      servers.set(key, server);
    }
    return server;
  }

  #attach(ws: WebSocket): void {
    this.#ws = ws;
    // `ws` closes an oversized message with 1009 and no reason; Tornado says why.
    const close = ws.close.bind(ws);
    ws.close = (code?: number, reason?: string | Buffer): void => close(code, code === 1009 && reason === undefined ? "message too big" : reason);
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const buffer = toBuffer(data);
      const message = isBinary ? buffer : buffer.toString("utf8");
      if (this.#busy || this.#queue.length > 0) this.#enqueue(() => this.onMessage(message));
      else this.#run(() => this.onMessage(message));
    });
    ws.on("ping", (data: Buffer) => this.#run(() => this.onPing(data)));
    ws.on("pong", (data: Buffer) => {
      if (this.#pongTimer !== null) clearTimeout(this.#pongTimer);
      this.#pongTimer = null;
      this.onPong(data);
    });
    ws.on("error", (err: Error) => log.warn(`WebSocket error on ${this.request.path}: ${err.message}`));
    ws.on("close", (code: number, reason: Buffer) => this.#closedBy(code, reason.toString("utf8")));
    this.#startKeepalive();
    // Long-lived connections must not hold `HTTPServer.stop()` open forever: when the server
    // begins to drain, the socket closes with 1001 (going away).
    this.#stopListening = drainStateOf(this).onDrain(() => this.close(1001, "Server shutting down"));
  }

  // Messages are handled one at a time, after open(), in arrival order (as Tornado awaits
  // them). Synchronous hooks run at once; only an async one makes the next message wait.
  #enqueue(fn: () => unknown): void {
    this.#queue.push(fn);
    if (!this.#busy) this.#drain();
  }

  #drain(): void {
    while (this.#queue.length > 0 && !this.#busy) this.#run(this.#queue.shift()!);
  }

  // Runs one hook; a promise it returns holds the queue until it settles.
  #run(fn: () => unknown): void {
    let result: unknown;
    try {
      result = fn();
    } catch (err) {
      this.#failed(err);
      return;
    }
    if (isThenable(result)) {
      this.#busy = true;
      result.then(
        () => { this.#busy = false; this.#drain(); },
        (err: unknown) => { this.#busy = false; this.#failed(err); this.#drain(); },
      );
    }
  }

  #failed(err: unknown): void {
    log.error(`Uncaught exception in WebSocket handler for ${this.request.path}`, err);
    this.close(1011, "Internal error");
  }

  #startKeepalive(): void {
    const interval = numberSetting(this.settings["websocketPingInterval"]);
    if (interval === undefined || interval <= 0) return;
    const timeout = numberSetting(this.settings["websocketPingTimeout"]) ?? Math.max(3 * interval, 30_000);
    this.#pingTimer = setInterval(() => {
      if (this.#pongTimer !== null || this.closed) return;
      this.#ws!.ping();
      // websocketPingTimeout: 0 turns the timeout off (pings still keep proxies from idling out).
      if (timeout <= 0) return;
      this.#pongTimer = setTimeout(() => {
        log.warn(`WebSocket on ${this.request.path}: no pong in ${timeout} ms, closing`);
        this.#ws?.terminate();
      }, timeout);
    }, interval);
  }

  #closedBy(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.closeCode = code;
    this.closeReason = reason;
    if (this.#pingTimer !== null) clearInterval(this.#pingTimer);
    if (this.#pongTimer !== null) clearTimeout(this.#pongTimer);
    this.#stopListening();
    this.#enqueue(() => this.onClose());
  }
}

function httpOutputAllowed(handler: WebSocketHandler): void {
  if (opened.has(handler)) throw new TyphoonError(ErrorCode.RESPONSE_FINISHED, "HTTP output after the WebSocket handshake: use writeMessage()");
}

function rememberHeader(handler: WebSocketHandler, name: string): void {
  let names = headerNames.get(handler);
  if (names === undefined) headerNames.set(handler, (names = new Map()));
  names.set(name.toLowerCase(), name);
}

// Tornado's compression_options → ws's permessage-deflate options; `null` turns it off.
function deflateOptions(options: object | null): false | { zlibDeflateOptions: { level?: number; memLevel?: number } } {
  if (options === null) return false;
  const o = options as { compressionLevel?: unknown; memLevel?: unknown };
  const zlib: { level?: number; memLevel?: number } = {};
  if (typeof o.compressionLevel === "number") zlib.level = o.compressionLevel;
  if (typeof o.memLevel === "number") zlib.memLevel = o.memLevel;
  return { zlibDeflateOptions: zlib };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function numberSetting(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

acceptUpgrades(WebSocketHandler);
