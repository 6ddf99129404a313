/**
 * `WebSocketHandler`: Tornado's WebSocket handler on the `ws` package. The upgrade request runs
 * the normal handler lifecycle (initialize, current user, `prepare()` — which may answer 401 —
 * then `get()`), so a rejected handshake is an ordinary HTTP error response on the raw socket.
 * `get()` checks the headers and the origin, then hands the socket to `ws` and calls `open()`.
 * The class registers itself with the upgrade seam (`core/web/upgrade.ts`), so the application
 * routes upgrade requests to it without importing this file.
 */
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { ErrorCode, HTTPError, TyphoonError } from "../core/errors.ts";
import { RequestHandler } from "../core/web/handler.ts";
import { log } from "../core/log.ts";
import { acceptUpgrades, takeUpgrade } from "../core/web/upgrade.ts";

/** Tornado's default `websocket_max_message_size`: 10 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);
// One `ws` server (it holds no sockets, only the handshake logic) per message-size limit.
const servers = new Map<number, WebSocketServer>();

// Open WebSockets. While any exist a timer looks for a draining server and closes its sockets
// (1001, going away): long-lived connections must not hold `HTTPServer.stop()` open forever.
const live = new Set<WebSocketHandler>();
let drainTimer: NodeJS.Timeout | null = null;
const DRAIN_CHECK_INTERVAL = 200;

function track(handler: WebSocketHandler): void {
  live.add(handler);
  if (drainTimer === null) {
    drainTimer = setInterval(() => {
      for (const h of live) if (h.serverDraining) h.close(1001, "Server shutting down");
    }, DRAIN_CHECK_INTERVAL);
    drainTimer.unref();
  }
}

function untrack(handler: WebSocketHandler): void {
  live.delete(handler);
  if (live.size === 0 && drainTimer !== null) {
    clearInterval(drainTimer);
    drainTimer = null;
  }
}

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
  readonly #queue: (() => unknown)[] = [];
  #busy = false;
  #pingTimer: NodeJS.Timeout | null = null;
  #pongTimer: NodeJS.Timeout | null = null;
  /** The close code the peer sent (or 1006 for an abrupt end); `null` while open. */
  closeCode: number | null = null;
  /** The close reason the peer sent; `null` while open. */
  closeReason: string | null = null;

  /** Hook: the connection is open; gets the path groups like `get()` would. */
  open(..._args: unknown[]): void | Promise<void> {}

  /** Hook: a message arrived: a `string` for a text frame, a `Buffer` for a binary one. Awaited in order. */
  onMessage(_message: string | Buffer): void | Promise<void> {}

  /** Hook: the connection closed, whichever side closed it or however it ended. Called once. */
  onClose(): void {}

  /** Hook: a pong arrived. */
  onPong(_data: Buffer): void {}

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
    const req = this.request.raw;
    const upgrade = takeUpgrade(req);
    if (upgrade === undefined) throw new HTTPError(400, "Not an upgrade request (served without an upgrade listener)");
    const { socket, head } = upgrade;
    const { res } = this.detach();
    res.removeAllListeners("finish");
    res.detachSocket(socket);
    await new Promise<void>((resolve) => {
      // `ws` answers an invalid handshake (bad key or version) itself and never calls back.
      socket.once("close", resolve);
      this.#server().handleUpgrade(req, socket, head, (ws) => {
        socket.off("close", resolve);
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

  #server(): WebSocketServer {
    const size = numberSetting(this.settings["websocketMaxMessageSize"]) ?? DEFAULT_MAX_MESSAGE_SIZE;
    let server = servers.get(size);
    if (server === undefined) {
      server = new WebSocketServer({ noServer: true, maxPayload: size, clientTracking: false, perMessageDeflate: false });
      servers.set(size, server);
    }
    return server;
  }

  #attach(ws: WebSocket): void {
    this.#ws = ws;
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const buffer = toBuffer(data);
      const message = isBinary ? buffer : buffer.toString("utf8");
      if (this.#busy || this.#queue.length > 0) this.#enqueue(() => this.onMessage(message));
      else this.#run(() => this.onMessage(message));
    });
    ws.on("pong", (data: Buffer) => {
      if (this.#pongTimer !== null) clearTimeout(this.#pongTimer);
      this.#pongTimer = null;
      this.onPong(data);
    });
    ws.on("error", (err: Error) => log.warn(`WebSocket error on ${this.request.path}: ${err.message}`));
    ws.on("close", (code: number, reason: Buffer) => this.#closedBy(code, reason.toString("utf8")));
    this.#startKeepalive();
    track(this);
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
    untrack(this);
    this.#enqueue(() => this.onClose());
  }
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
