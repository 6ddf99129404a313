/**
 * `HTTPServer`: serves an `Application` (or any node `(req, res)` listener) over node:http or
 * node:https, with typhoon's limits; `listen` in this process, `bind` + `start(n)` for several
 * processes (see `process.ts`), and a draining `stop()`.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { declaredTooLarge } from "../http/body-read.ts";
import { answerOnSocket } from "../http/respond.ts";
import { ErrorCode, TyphoonError } from "../errors.ts";
import { DEFAULTS, serverContext, type AutoreloadSpec, type BindAddress, type HTTPServerOptions, type ServerContext, type ServerHandle } from "./options.ts";
import { drainOnSignals, startServer, type StartOptions } from "./process.ts";
import { checkTarget, listenOn, type ListenTarget } from "./listen.ts";
import { serveTargetOf, type ServeTarget } from "./servable.ts";
import { quietKeepAlive, closeIfUnused, ignoreUpgradeOffer, isWebSocketUpgrade } from "./connection.ts";

/** How long a connection answered with a client error may stay half-open (ms). */
const CLIENT_ERROR_LINGER = 1000;

/** What `HTTPServer` serves besides a plain listener: an `Application`. */
export type Servable = object;

/** A plain node request listener. */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;


/**
 * An HTTP server for an application.
 *
 * @example
 * const server = new HTTPServer(app, { xheaders: true, maxBodySize: 1 << 20 });
 * await server.listen(8888);
 */
export class HTTPServer {
  readonly options: HTTPServerOptions;
  // The resolved options and live state (draining) the request path reads.
  readonly #context: ServerContext;
  readonly #target: ServeTarget | RequestListener;
  readonly #autoreload: AutoreloadSpec | undefined;
  // What the process side (signals, handoff) may do with this server.
  readonly #handle: ServerHandle;
  #server: Server | null = null;
  #bound: BindAddress | null = null;
  #stopping: Promise<void> | null = null;

  constructor(appOrListener: Servable | RequestListener, options: HTTPServerOptions = {}) {
    this.#context = serverContext(options);
    this.options = options;
    if (typeof appOrListener === "function") this.#target = appOrListener as RequestListener;
    else {
      const target = serveTargetOf(appOrListener);
      if (target === undefined) throw new TyphoonError(ErrorCode.SERVER_OPTION, "HTTPServer serves an Application or a (req, res) listener");
      this.#target = target;
    }
    this.#autoreload = typeof this.#target === "function" ? undefined : this.#target.autoreload;
    const self = this;
    this.#handle = {
      context: this.#context,
      options,
      get httpServer() { return self.#server; },
      listen: (target, host, extra) => this.#listen(target, host, extra),
      stop: (timeout) => this.stop(timeout),
      unboundServer: () => this.#unboundServer(),
      autoreload: this.#autoreload,
    };
  }

  /**
   * Binds and serves in this process; resolves when listening. `target` is a port, `{ path }`
   * (a Unix socket; a stale socket file is replaced; `socketMode` sets its permissions) or
   * `{ fd }` (an inherited listening descriptor, e.g. {@link listenFromEnvironment}'s). In debug
   * mode (the app's `autoreload`), this process becomes the supervisor of one child that serves
   * and is replaced when a source file changes: there `listen()` never resolves, and the child
   * runs what follows.
   */
  async listen(target: ListenTarget, host?: string): Promise<void> {
    checkTarget(target);
    if (this.#autoreload !== undefined) return startServer(this.#handle, { target, host }, 1);
    return this.#listen(target, host);
  }

  // `reusePort`: a child of start(n, { scheduling: "reuseport" }) opens its own socket (process.ts).
  async #listen(target: ListenTarget, host?: string, extra: { reusePort?: boolean } = {}): Promise<void> {
    checkTarget(target);
    const server = this.#create();
    await listenOn(server, target, host, extra);
    drainOnSignals(this.#handle); // SIGTERM/SIGINT: drain, then exit 0 (process.ts)
  }

  /** Remembers the address for `start()` (a port, `{ path }` or `{ fd }`); nothing is opened yet. */
  bind(target: ListenTarget, host?: string): void {
    checkTarget(target);
    this.#bound = { target, host };
  }

  /**
   * Serves the bound address in `numProcesses` processes: `start()` and `start(1)` serve here;
   * more (or an explicit `0`/`undefined`: one per CPU) make this process a supervisor of forked
   * children. See `process.ts`.
   */
  start(numProcesses?: number, options: StartOptions = {}): Promise<void> {
    if (this.#bound === null) return Promise.reject(new TyphoonError(ErrorCode.SERVER_STATE, "Call bind(port) before start()"));
    // API.md: `start(numProcesses = 1)` (Tornado's default), and 0 or undefined mean one per CPU:
    // only an omitted argument can tell the two apart.
    const count = arguments.length === 0 ? 1 : numProcesses;
    return startServer(this.#handle, this.#bound, count, options);
  }

  // The node server, created without listening, for connections accepted by a supervisor and
  // handed over (`server.emit("connection", socket)`, handoff.ts).
  #unboundServer(): Server {
    if (this.#server !== null) return this.#server;
    const server = this.#create();
    // node starts its connection tracking (headersTimeout checks, closeIdleConnections) on 'listening'.
    server.emit("listening");
    return server;
  }

  /** The bound address (its `port` is the real one after `listen(0)`), or `null`. */
  address(): AddressInfo | null {
    const address = this.#server?.address();
    return address !== null && typeof address === "object" ? address : null;
  }

  /** The underlying node server, once listening. */
  get httpServer(): Server | null {
    return this.#server;
  }

  /**
   * Stops accepting, answers in-flight requests with `Connection: close`, and resolves when they
   * are done. After `timeout` ms (default: the `drainTimeout` option) remaining connections are cut.
   */
  stop(timeout: number = this.options.drainTimeout ?? DEFAULTS.drainTimeout): Promise<void> {
    const server = this.#server;
    if (server === null) return Promise.resolve();
    const drain = this.#context.drain;
    this.#stopping ??= new Promise<void>((resolve) => {
      drain.begin();
      const timer = setTimeout(() => server.closeAllConnections(), timeout);
      timer.unref();
      server.close(() => {
        clearTimeout(timer);
        drain.end();
        resolve();
      });
      // close() stops accepting; idle keep-alive connections would otherwise hold it open.
      server.closeIdleConnections();
    });
    return this.#stopping;
  }

  /** Cuts every open connection at once. */
  closeAllConnections(): void {
    this.#server?.closeAllConnections();
  }

  #create(): Server {
    if (this.#server !== null) throw new TyphoonError(ErrorCode.SERVER_STATE, "This HTTPServer is already listening");
    const o = this.options;
    const headersTimeout = o.headersTimeout ?? DEFAULTS.headersTimeout;
    const idle = o.idleConnectionTimeout ?? DEFAULTS.idleConnectionTimeout;
    const settings = {
      maxHeaderSize: o.maxHeaderSize ?? DEFAULTS.maxHeaderSize,
      keepAliveTimeout: idle,
      headersTimeout,
      // typhoon enforces bodyTimeout itself (an inactivity timer), so Node's whole-request
      // deadline is off; the head deadline is checked often enough to cut slowloris promptly.
      requestTimeout: 0,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4))),
      ...(o.maxRequestsPerSocket !== undefined ? { maxRequestsPerSocket: o.maxRequestsPerSocket } : {}),
      noDelay: true,
    };
    const target = this.#target;
    const ctx = this.#context;
    // No deprecated `Keep-Alive: timeout=N` header on any response (connection.ts).
    const listener: RequestListener = typeof target === "function"
      ? (req, res) => { quietKeepAlive(res); target(req, res); }
      : (req, res) => { quietKeepAlive(res); target.handle(req, res, ctx); };
    const server = o.ssl !== undefined ? createHttpsServer({ ...settings, ...o.ssl }, listener) : createHttpServer(settings, listener);
    // RFC 9110 §10.1.1: a body that will be refused with 413 is refused before the client sends
    // it, so no `100 Continue` for a Content-Length over maxBodySize (node would send one).
    server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
      if (!declaredTooLarge(req, ctx.maxBodySize)) res.writeContinue();
      listener(req, res);
    });
    if (typeof target !== "function") {
      // Only WebSocket is upgraded to; any other offer (h2c) is ignored and served as HTTP/1.1.
      server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (isWebSocketUpgrade(req)) target.handleUpgrade(req, socket, head, ctx);
        else ignoreUpgradeOffer(server, req, socket, head);
      });
    }
    // Tornado's idle_connection_timeout also closes a connection that never sends a request.
    // A TLS handshake is already traffic: there, node's own timeouts apply.
    if (o.ssl === undefined) server.on("connection", (socket: Socket) => closeIfUnused(socket, idle));
    // A client error (malformed request, oversize head, timeout) answers the client when it
    // still can, and never reaches the app or crashes the process (Node's default responses).
    server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
      const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
      const inFlight = inFlightResponse(socket);
      if (!socket.writable || (inFlight !== null && inFlight.headersSent && !inFlight.req.complete)) {
        // The answer to the request whose body failed has begun: its status line is gone, so
        // the only honest signal left is to cut the connection.
        socket.destroy();
        return;
      }
      if (inFlight !== null && inFlight.req.complete) {
        // A later pipelined request failed to parse: the requests before it are answered first
        // (their responses are queued on this socket), then the error, then the close. Sent
        // earlier, a client would take the error for the answer to one of them.
        afterQueuedResponses(socket, () => answerAndLinger(socket, status));
        return;
      }
      answerAndLinger(socket, status);
    });
    this.#server = server;
    return server;
  }
}

type HTTPSocket = Socket & { _httpMessage?: ServerResponse | null };

// The response node:http is writing on this socket now (pipelined ones queue behind it).
function inFlightResponse(socket: Socket): ServerResponse | null {
  return (socket as HTTPSocket)._httpMessage ?? null;
}

// Runs `then` once every response queued on the socket is finished (node hands the socket to
// the next queued response before later 'finish' listeners run), unless the socket closes first.
function afterQueuedResponses(socket: Socket, then: () => void): void {
  const current = inFlightResponse(socket);
  if (current === null) {
    if (socket.writable) then();
    return;
  }
  current.once("finish", () => afterQueuedResponses(socket, then));
}

// The error answer, then a close once the client had time to read it: the socket is half-open
// (node's servers allow it), and a handler still waiting for that request's body is released.
function answerAndLinger(socket: Socket, status: number): void {
  answerOnSocket(socket, status);
  const linger = setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER);
  linger.unref();
  socket.once("close", () => clearTimeout(linger));
}
