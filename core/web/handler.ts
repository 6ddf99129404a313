/**
 * `RequestHandler`: Tornado's request lifecycle in one readable `execute()`, and the output
 * side of a handler (status, headers, buffered or streamed body, errors, redirects).
 * Arguments, cookies, signed cookies, XSRF and users live in `handler-io.ts`, the base class.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCode, Finish, HTTPError, TyphoonError } from "../errors.ts";
import { errorText, log } from "../log.ts";
import { reportBlocking } from "../loop/loop-monitor.ts";
import type { BlockingWatch, InFlight } from "../loop/blocking.ts";
import { hasBody, receiveBody, receiveStream } from "../http/body.ts";
import { LOWER_METHODS, SAFE_METHODS, allowedMethods, methodFunction, type Hook } from "./methods.ts";
import { bodyLength, checkHeader, isBodyless, joinChunks, newHeaderMap, type Body, type HeaderMap } from "../http/headers.ts";
import { etagMatches, etagOf } from "../http/etag.ts";
import { errorPage } from "../http/error-page.ts";
import { sendHead, sendWhole } from "./respond.ts";
import { HandlerIO } from "./handler-io.ts";
import { StreamCompressor, addVaryAcceptEncoding, compressBody } from "../http/compress.ts";
import { setRequestBody, type HTTPServerRequest } from "./request.ts";
import type { ServerContext } from "../server/options.ts";
import type { ApplicationView } from "./settings.ts";

/** What the application hands a handler besides the request. Internal to typhoon. */
export interface HandlerContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly server: ServerContext;
  readonly initArgs: unknown;
  readonly pathArgs: (string | undefined)[];
  readonly pathKwargs: Record<string, string | undefined>;
  /** The application's blocking watchdog, when `blockingThreshold` is set. */
  readonly watch?: BlockingWatch | undefined;
  /** The application's access log (or `logFunction`), called once the request is finished. */
  readonly logRequest: (handler: RequestHandler) => void;
}

// Hooks take whatever their subclass declares; they are called with the request's values.
type Callable = (...args: unknown[]) => unknown;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}

/**
 * Subclass it and implement `get`, `post`, ...; path groups arrive as arguments.
 *
 * @example
 * class UserHandler extends RequestHandler {
 *   async get(id: string): Promise<void> {
 *     this.write({ id, name: await db.name(id) });
 *   }
 * }
 */
export class RequestHandler extends HandlerIO {
  /** The methods this handler accepts at all; others get 405. */
  static supportedMethods: readonly string[] = ["GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"];
  /** Stream the request body: `prepare()` on headers, then `dataReceived(chunk)` per chunk. */
  static streamRequestBody = false;

  /** Positional path groups, percent-decoded. */
  readonly pathArgs: (string | undefined)[];
  /** Named path groups, percent-decoded. */
  readonly pathKwargs: Record<string, string | undefined>;

  readonly #ctx: HandlerContext;
  #status = 200;
  #reason: string | undefined = undefined;
  #headers: HeaderMap;
  #chunks: Body[] = [];
  #headersWritten = false;
  #finished = false;
  #detached = false;
  #closeAfter = false;
  #compressor: StreamCompressor | null = null;
  /** The function answering the request's method, found by the method check. */
  #method: Hook | undefined = undefined;
  readonly #blockingThreshold: number | undefined;
  #inFlight: InFlight | null = null;

  constructor(application: ApplicationView, request: HTTPServerRequest, ctx: HandlerContext) {
    super(application, request);
    this.#ctx = ctx;
    this.pathArgs = ctx.pathArgs;
    this.pathKwargs = ctx.pathKwargs;
    this.#blockingThreshold = application.settings.blockingThreshold;
    this.#headers = this.#defaultHeaders();
    this.setDefaultHeaders();
  }

  // ---- The lifecycle ------------------------------------------------------------------------

  /**
   * Runs the request: initialize → method check → body → XSRF → current user → prepare →
   * the method → finish → onFinish. Called by the application; never throws.
   *
   * The steps are {@link #step}, in order. They run one after another without a promise as long
   * as each completes synchronously, so a handler whose hooks and method are synchronous is
   * served with no promise and no microtask. The first step that returns a promise (an async
   * hook, a body to read) hands the rest to {@link #resumeAfter}, which awaits it and carries on
   * with the next step.
   */
  execute(): void {
    // Only handlers that override the hook pay for a close listener.
    if (this.onConnectionClose !== RequestHandler.prototype.onConnectionClose) this.#ctx.res.once("close", () => this.#connectionClosed());
    const watch = this.#ctx.watch;
    if (watch !== undefined) {
      this.#inFlight = { method: this.request.method, path: this.request.path, handler: this.constructor.name, hook: "initialize" };
      watch.enter(this.#inFlight);
    }
    this.#runFrom(Step.Initialize);
  }

  /** One step of the lifecycle: a promise if it is still running, {@link STOP} if the request is done. */
  #step(step: Step): unknown {
    switch (step) {
      case Step.Initialize:
        // The base hooks do nothing: not calling them saves a call (and its timing) per request.
        if (this.initialize === RequestHandler.prototype.initialize) return undefined;
        return this.#call("initialize", this.initialize, [this.#ctx.initArgs]);
      case Step.MethodCheck:
        this.#method = methodFunction(this, this.request.method);
        return undefined;
      case Step.Body: {
        const req = this.#ctx.req;
        if ((this.constructor as typeof RequestHandler).streamRequestBody || !hasBody(req)) return undefined;
        return receiveBody(req, this.#ctx.server).then(({ body, parsed }) => setRequestBody(this.request, body, parsed.arguments, parsed.files));
      }
      case Step.Xsrf:
        if (this.settings.xsrfCookies && !SAFE_METHODS.has(this.request.method)) this.checkXsrfCookie();
        return undefined;
      case Step.CurrentUser: {
        if (this.getCurrentUser === HandlerIO.prototype.getCurrentUser) return undefined;
        const user = this.#call("getCurrentUser", this.getCurrentUser, NO_ARGS);
        if (!isThenable(user)) {
          this.currentUser = user;
          return undefined;
        }
        return Promise.resolve(user).then((value) => { this.currentUser = value; });
      }
      case Step.Prepare:
        if (this.prepare === RequestHandler.prototype.prepare) return undefined;
        return this.#call("prepare", this.prepare, NO_ARGS);
      case Step.Prepared:
        // prepare() finished (or detached) the response: the method is not called.
        return this.#finished || this.#detached ? STOP : undefined;
      case Step.StreamBody:
        if (!(this.constructor as typeof RequestHandler).streamRequestBody) return undefined;
        return receiveStream(this.#ctx.req, this.#ctx.server, (chunk) => this.#call("dataReceived", this.dataReceived, [chunk]));
      case Step.Method: {
        const args = this.pathKwargs === NO_KWARGS ? this.pathArgs : [this.pathKwargs];
        const method = this.request.method;
        return this.#call(LOWER_METHODS[method] ?? method.toLowerCase(), this.#method, args);
      }
      case Step.Finish:
        if (!this.#finished && !this.#detached) this.finish();
        return STOP;
    }
  }

  /** Runs the steps from `step` on while they complete synchronously (see {@link execute}). */
  #runFrom(step: Step): void {
    try {
      for (let outcome = this.#step(step); outcome !== STOP; outcome = this.#step(++step)) {
        if (isThenable(outcome)) {
          void this.#resumeAfter(outcome, step + 1);
          return;
        }
      }
    } catch (err) {
      this.#fail(err);
    }
    this.#leave();
  }

  /** The asynchronous continuation: waits for the step that returned `pending`, then runs the rest. */
  async #resumeAfter(pending: PromiseLike<unknown>, next: Step): Promise<void> {
    try {
      await pending;
    } catch (err) {
      this.#fail(err);
      this.#leave();
      return;
    }
    this.#runFrom(next);
  }

  /** A step threw: answer with the error (never throws). */
  #fail(err: unknown): void {
    try {
      this.#handleException(err);
    } catch (fatal) {
      // Error handling itself failed (a throwing logFunction, a bad status): never let it
      // escape as an unhandled rejection, which would stop the process.
      this.#lastResort(fatal);
    }
  }

  /** The request is done with the lifecycle: the blocking watchdog stops watching it. */
  #leave(): void {
    if (this.#inFlight !== null) this.#ctx.watch!.leave(this.#inFlight);
  }

  /** Hook: called first with the rule's init arguments (Tornado's `initialize(**kwargs)`). */
  initialize(_initArgs?: unknown): void | Promise<void> {}

  /** Hook: called before the HTTP method; finishing the response here skips the method. */
  prepare(): void | Promise<void> {}

  /** Hook: called after the response is finished (logging, cleanup). */
  onFinish(): void | Promise<void> {}

  /** Hook: the client closed the connection before the response was finished. */
  onConnectionClose(): void {}

  /** Hook for `streamRequestBody` handlers: one chunk of the body; may return a promise (backpressure). */
  dataReceived(_chunk: Buffer): void | Promise<void> {}

  /** Hook: sets the headers every response starts with (called at construction and by `clear()`). */
  setDefaultHeaders(): void {}

  /** Takes the response away from typhoon (for WebSocket or a mounted node app). */
  detach(): { req: IncomingMessage; res: ServerResponse } {
    this.#detached = true;
    return { req: this.#ctx.req, res: this.#ctx.res };
  }

  // ---- Output -------------------------------------------------------------------------------

  /** Sets the status code (and optionally the reason phrase). */
  setStatus(status: number, reason?: string): void {
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new TyphoonError(ErrorCode.STATUS_CODE, `Invalid status ${status}`);
    this.#status = status;
    this.#reason = reason === undefined ? undefined : checkHeader("Reason", reason);
  }

  /** The status code of the response. */
  getStatus(): number {
    return this.#status;
  }

  /** Sets a header, replacing any value it had. CR, LF and other controls throw. */
  setHeader(name: string, value: string | number | Date): void {
    this.#headers[name.toLowerCase()] = checkHeader(name, value);
  }

  /** Adds a value to a header that may repeat. */
  addHeader(name: string, value: string | number | Date): void {
    const key = name.toLowerCase();
    const text = checkHeader(name, value);
    const current = this.#headers[key];
    this.#headers[key] = current === undefined ? text : Array.isArray(current) ? [...current, text] : [current, text];
  }

  /** Removes a header. */
  clearHeader(name: string): void {
    delete this.#headers[name.toLowerCase()];
  }

  /** A header set on the response so far. */
  getHeader(name: string): string | string[] | undefined {
    return this.#headers[name.toLowerCase()];
  }

  /** Resets headers, status and buffered body (cookies set so far are kept, as in Tornado). */
  clear(): void {
    this.#headers = this.#defaultHeaders();
    this.#status = 200;
    this.#reason = undefined;
    this.#chunks = [];
    this.setDefaultHeaders();
  }

  /**
   * Buffers output: a string (HTML by default), bytes, or a plain object/array sent as JSON.
   */
  write(chunk: string | Uint8Array | object): void {
    if (this.#finished) throw new TyphoonError(ErrorCode.RESPONSE_FINISHED, "write() after finish()");
    if (typeof chunk === "string") this.#chunks.push(chunk);
    else if (chunk instanceof Uint8Array) this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    else if (typeof chunk === "object" && chunk !== null) {
      // Escaping "</" keeps JSON safe inside a <script> block (Tornado's json_encode); most
      // JSON has none, and includes() finds that out cheaper than a global replace.
      const json = JSON.stringify(chunk);
      this.#chunks.push(json.includes("</") ? json.replace(/<\//g, "<\\/") : json);
      this.#headers["content-type"] = "application/json; charset=UTF-8";
    } else throw new TypeError(`write() takes a string, bytes or an object, not ${typeof chunk}`);
  }

  /**
   * Sends the headers and what is buffered; later writes stream (chunked on HTTP/1.1).
   * Resolves once the socket has taken the data (backpressure).
   */
  flush(): Promise<void> {
    const res = this.#ctx.res;
    if (!this.#headersWritten) {
      this.#headersWritten = true;
      this.#prepareHeaders();
      if (this.settings.compressResponse) {
        this.#compressor = StreamCompressor.start(res, this.request.headers["accept-encoding"], this.#status, this.#headers);
      }
      sendHead(res, this.#status, this.#reason, this.#headers);
    }
    const body = joinChunks(this.#chunks);
    this.#chunks = [];
    if (this.#compressor !== null) return this.#compressor.write(body);
    if (bodyLength(body) === 0 || res.destroyed) return Promise.resolve();
    if (res.write(body)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => { res.off("drain", done); res.off("close", done); resolve(); };
      res.on("drain", done);
      res.on("close", done);
    });
  }

  /** Finishes the response, optionally writing a last chunk. A second call throws. */
  finish(chunk?: string | Uint8Array | object): void {
    if (this.#finished) throw new TyphoonError(ErrorCode.RESPONSE_FINISHED, "finish() called twice");
    if (chunk !== undefined) this.write(chunk);
    const res = this.#ctx.res;
    if (this.#headersWritten) {
      const rest = joinChunks(this.#chunks);
      if (this.#compressor !== null) this.#compressor.end(rest);
      else if (bodyLength(rest) > 0) res.end(rest);
      else res.end();
    } else {
      this.#headersWritten = true;
      let body: Body | null = joinChunks(this.#chunks);
      const method = this.request.method;
      if (this.#status === 200 && (method === "GET" || method === "HEAD") && this.settings.etag !== false && this.#headers["etag"] === undefined) {
        const etag = this.computeEtag(body);
        if (etag !== null) {
          this.#headers["etag"] = etag;
          if (etagMatches(this.request.headers["if-none-match"], etag)) this.#status = 304;
        }
      }
      if (isBodyless(this.#status)) {
        body = null;
        delete this.#headers["content-length"];
        if (this.#status === 304) delete this.#headers["content-type"];
      } else {
        if (this.settings.compressResponse) body = compressBody(this.request.headers["accept-encoding"], this.#status, this.#headers, body);
        if (this.#headers["content-length"] === undefined) this.#headers["content-length"] = String(bodyLength(body));
      }
      this.#prepareHeaders();
      sendWhole(res, this.#status, this.#reason, this.#headers, body);
    }
    this.#chunks.length = 0;
    this.#finished = true;
    this.#afterFinish();
  }

  /** Whether the response has been finished. */
  get finished(): boolean {
    return this.#finished;
  }

  /** Whether the headers have been sent. */
  get headersWritten(): boolean {
    return this.#headersWritten;
  }

  /** Whether the server is draining (stopping): `HealthHandler` answers 503 then. */
  get serverDraining(): boolean {
    return this.#ctx.server.draining;
  }

  /**
   * The URL of a file under the `staticPath` setting, with a `?v=<content hash>` that lets
   * `StaticFileHandler` send it with a long `Cache-Control` (Tornado's `static_url`).
   *
   * @example
   * this.write(`<script src="${this.staticUrl("chat.js")}"></script>`); // /static/chat.js?v=3f2a...
   */
  staticUrl(path: string): string {
    return this.application.staticUrl(path);
  }

  /** Redirects with 302 (or 301 when permanent, or an explicit 3xx status) and finishes. */
  redirect(url: string, permanent = false, status?: number): void {
    if (this.#headersWritten) throw new TyphoonError(ErrorCode.RESPONSE_FINISHED, "Cannot redirect after headers have been written");
    const code = status ?? (permanent ? 301 : 302);
    if (!Number.isInteger(code) || code < 300 || code > 399) {
      throw new TyphoonError(ErrorCode.STATUS_CODE, `redirect() status must be 3xx, got ${code}`);
    }
    this.setStatus(code);
    this.setHeader("Location", url);
    this.finish();
  }

  /** Hook: the ETag of a buffered body, or `null` for none (Tornado's `compute_etag`). */
  computeEtag(body: Body): string | null {
    return etagOf(body);
  }

  // ---- Errors -------------------------------------------------------------------------------

  /** Sends an error response through `writeError` (safe to call from anywhere in the handler). */
  sendError(status = 500, info: { error?: unknown } = {}): void {
    if (this.#headersWritten) {
      // The status line is gone: the only honest signal left is to cut the connection.
      log.error(`Cannot send error ${status} after headers were written; closing the connection`);
      if (!this.#finished) {
        this.#finished = true;
        this.#ctx.res.destroy();
        this.#afterFinish();
      }
      return;
    }
    this.clear();
    const error = info.error;
    try {
      this.setStatus(status, error instanceof HTTPError ? error.reason : undefined);
    } catch (err) {
      // A reason with CR/LF (often built from user input) or an impossible status: answer 500.
      log.error(`Invalid error status or reason for ${this.#summary()}`, err);
      status = 500;
      this.setStatus(500);
    }
    if (status === 405) this.setHeader("Allow", allowedMethods(this).join(", "));
    try {
      this.writeError(status, info);
    } catch (err) {
      log.error(`Uncaught exception in writeError for ${this.#summary()}`, err);
      this.clear();
      this.setStatus(500);
      this.#chunks = [];
    }
    if (!this.#finished) this.finish();
  }

  /** Hook: writes the error page. The default is HTML, or JSON when `Accept` prefers it. */
  writeError(status: number, info: { error?: unknown } = {}): void {
    const error = info.error;
    const serveTrace = this.settings.serveTraceback ?? this.settings.debug ?? false;
    const trace = serveTrace && error !== undefined && !(error instanceof HTTPError) ? errorText(error) : undefined;
    const page = errorPage(status, this.#reason, this.request.headers.accept, trace);
    this.setHeader("Content-Type", page.contentType);
    this.finish(page.body);
  }

  // ---- Internals ----------------------------------------------------------------------------

  #defaultHeaders(): HeaderMap {
    const headers = newHeaderMap();
    headers["content-type"] = "text/html; charset=UTF-8";
    // No Server header: it costs bytes on every response and only tells scanners what runs here
    // (Tornado sends one; setDefaultHeaders() can add it back).
    return headers;
  }

  #prepareHeaders(): void {
    const cookies = this.newCookieHeaders();
    if (cookies.length > 0) this.#headers["set-cookie"] = cookies;
    const server = this.#ctx.server;
    if (server.draining || server.noKeepAlive || this.#closeAfter) this.#headers["connection"] = "close";
    // A streaming handler that answered before reading the body (a 401 from prepare()): the
    // unread body must not be parsed as the next request, and is not worth reading.
    else if (hasBody(this.#ctx.req) && !this.#ctx.req.complete) this.#headers["connection"] = "close";
    if (this.settings.compressResponse) addVaryAcceptEncoding(this.#headers);
  }

  /** Calls one lifecycle hook; with `blockingThreshold` set, times its synchronous part. */
  #call(hook: string, fn: Hook | undefined, args: readonly unknown[]): unknown {
    if (fn === undefined) return undefined;
    const threshold = this.#blockingThreshold;
    if (threshold === undefined) return (fn as Callable).apply(this, args as unknown[]);
    if (this.#inFlight !== null) this.#inFlight.hook = hook;
    const start = performance.now();
    try {
      return (fn as Callable).apply(this, args as unknown[]);
    } finally {
      const ms = performance.now() - start;
      if (ms > threshold) {
        reportBlocking({ method: this.request.method, path: this.request.path, handler: this.constructor.name, hook, ms },
          (message) => log.warn(message));
        this.#ctx.watch?.noteReported();
      }
    }
  }

  #handleException(err: unknown): void {
    if (err instanceof Finish) {
      if (!this.#finished) this.finish(err.chunk === undefined ? undefined : (err.chunk as string));
      return;
    }
    if (this.#finished || this.#detached) {
      log.error(`Exception after the response was finished in ${this.#summary()}`, err);
      return;
    }
    if (err instanceof HTTPError) {
      if (err.logMessage !== undefined) log.warn(`${err.status} ${this.#summary()}: ${err.logMessage}`);
      // The unread body would be parsed as the next request: close the connection after answering.
      if (err.status === 413 || err.status === 408) this.#closeAfter = true;
      this.sendError(err.status, { error: err });
      return;
    }
    log.error(`Uncaught exception ${this.#summary()}`, err);
    this.sendError(500, { error: err });
  }

  #connectionClosed(): void {
    if (this.#detached || this.#ctx.res.writableFinished) return;
    try {
      this.onConnectionClose();
    } catch (err) {
      log.error(`Exception in onConnectionClose of ${this.#summary()}`, err);
    }
  }

  #lastResort(err: unknown): void {
    try {
      log.error(`Exception while handling an error in ${this.#summary()}`, err);
    } catch {
      // The logger is what failed; nothing is left to report to.
    }
    const res = this.#ctx.res;
    if (!res.headersSent && !res.destroyed) {
      sendWhole(res, 500, undefined, { "content-length": "0", connection: "close" }, null);
    } else if (!res.writableEnded) {
      // Cut only a response still in progress; a complete one keeps its connection.
      res.destroy();
    }
  }

  #afterFinish(): void {
    this.#ctx.logRequest(this);
    try {
      const r = this.onFinish();
      if (isThenable(r)) r.then(undefined, (err: unknown) => log.error(`Exception in onFinish of ${this.#summary()}`, err));
    } catch (err) {
      log.error(`Exception in onFinish of ${this.#summary()}`, err);
    }
  }

  #summary(): string {
    return `${this.request.method} ${this.request.uri} (${this.request.remoteIp})`;
  }
}

const NO_KWARGS: Record<string, string | undefined> = Object.freeze(Object.create(null) as Record<string, string | undefined>);

/** The steps of the lifecycle, in the order {@link RequestHandler.execute} runs them. */
const enum Step { Initialize, MethodCheck, Body, Xsrf, CurrentUser, Prepare, Prepared, StreamBody, Method, Finish }

/** What a step returns when the request needs no further step. */
const STOP: unique symbol = Symbol("stop");

const NO_ARGS: readonly unknown[] = Object.freeze([]);

/** The empty named-groups object handlers of positional rules get. */
export function noKwargs(): Record<string, string | undefined> {
  return NO_KWARGS;
}
