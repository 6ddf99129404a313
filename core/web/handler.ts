/**
 * `RequestHandler`: Tornado's request lifecycle in one readable `execute()`, and the output
 * side of a handler (status, headers, buffered or streamed body, errors, redirects).
 * Arguments, cookies, signed cookies, XSRF and users live in `handler-io.ts`, the base class.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCode, Finish, HTTPError, TyphoonError, ValidationError } from "../errors.ts";
import { errorText, log } from "../log.ts";
import { reportBlocking } from "../loop/loop-monitor.ts";
import type { BlockingWatch, InFlight } from "../loop/blocking.ts";
import { hasBody, receiveBody, receiveStream } from "../http/body.ts";
import { SAFE_METHODS, allowedMethods, checkSupported, methodFunction, type Hook } from "./methods.ts";
import { etagOf } from "../http/etag.ts";
import type { Body } from "../http/headers.ts";
import { errorPage } from "../http/error-page.ts";
import { Response, type ResponseRules } from "../http/respond.ts";
import { HandlerIO } from "./handler-io.ts";
import { percentBytes } from "../http/percent.ts";
import { setRequestBody, type HTTPServerRequest } from "./request.ts";
import type { ServerContext } from "../server/options.ts";
import type { DrainState } from "../server/drain-state.ts";
import type { ApplicationView, HandlerSettings } from "./settings.ts";
import { compileHandlerSchema, emptyValid, validationPage, type CompiledSchema } from "./schema.ts";
import type { HandlerSchema, ValidInput } from "./schema-types.ts";

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
  /** The path groups are still percent-encoded: the handler's own `decodeArgument` decodes them. */
  readonly rawGroups?: boolean;
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
/** The draining state of the server a handler's request came in on. Internal (built-in handlers). */
export let drainStateOf: (handler: RequestHandler) => DrainState;

export class RequestHandler extends HandlerIO {
  /** The methods this handler accepts at all; others get 405. */
  static supportedMethods: readonly string[] = ["GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS"];
  /** Stream the request body: `prepare()` on headers, then `dataReceived(chunk)` per chunk. */
  static streamRequestBody = false;
  /** JSON Schemas of each method's input and responses (see `Validated` for typed `this.valid`). */
  static schema?: HandlerSchema;

  /** Positional path groups, percent-decoded. */
  readonly pathArgs: (string | undefined)[];
  /** Named path groups, percent-decoded. */
  readonly pathKwargs: Record<string, string | undefined>;

  readonly #ctx: HandlerContext;
  // The outgoing side: status, headers, body and every wire rule (core/http/respond.ts).
  readonly #out: Response;
  #detached = false;
  readonly #blockingThreshold: number | undefined;
  #inFlight: InFlight | null = null;
  #schema: CompiledSchema | undefined;
  #valid: ValidInput | undefined;

  constructor(application: ApplicationView, request: HTTPServerRequest, ctx: HandlerContext) {
    super(application, request);
    this.#ctx = ctx;
    this.pathArgs = ctx.pathArgs;
    this.pathKwargs = ctx.pathKwargs;
    this.#blockingThreshold = application.settings.blockingThreshold;
    this.#out = new Response(ctx.res, ctx.req, responseRules(application.settings, ctx.server), () => this.#summary());
    this.setDefaultHeaders();
  }

  // ---- The lifecycle ------------------------------------------------------------------------

  /**
   * Runs the request in Tornado's order: initialize → a method outside `supportedMethods` is a
   * 405 (before the body is read) → body → XSRF → prepare → a method that is not implemented
   * is a 405 (after prepare, so a prepare() that finishes or raises 404 wins) → the method →
   * finish → onFinish. `currentUser` is not resolved here: it is lazy, as in Tornado.
   * Called by the application; never throws.
   */
  async execute(): Promise<void> {
    const { req, res, initArgs } = this.#ctx;
    const method = this.request.method;
    // Only handlers that override the hook pay for a close listener.
    if (this.onConnectionClose !== RequestHandler.prototype.onConnectionClose) res.once("close", () => this.#connectionClosed());
    const watch = this.#ctx.watch;
    if (watch !== undefined) {
      this.#inFlight = { method, path: this.request.path, handler: this.constructor.name, hook: "initialize" };
      watch.enter(this.#inFlight);
    }
    try {
      const cls = this.constructor as typeof RequestHandler;
      if (cls.schema !== undefined) this.#schema = compileHandlerSchema(cls);
      const init = this.#call("initialize", this.initialize, [initArgs]);
      if (isThenable(init)) await init;
      checkSupported(this, method);
      if (this.#ctx.rawGroups === true) this.#decodePathArgs();
      const streaming = cls.streamRequestBody;
      if (!streaming && hasBody(req)) {
        const { body, parsed } = await receiveBody(req, this.#ctx.server);
        setRequestBody(this.request, body, parsed.arguments, parsed.files, parsed.json);
      }
      if (this.settings.xsrfCookies && !SAFE_METHODS.has(method)) this.checkXsrfCookie();
      const prepared = this.#call("prepare", this.prepare, []);
      if (isThenable(prepared)) await prepared;
      if (this.#out.finished || this.#detached) return;
      const fn = methodFunction(this, method);
      if (streaming) await receiveStream(req, this.#ctx.server, (chunk) => this.#call("dataReceived", this.dataReceived, [chunk]));
      const named = this.pathKwargs !== NO_KWARGS;
      if (this.#schema !== undefined) this.#valid = this.#schema.validate(method, this.request, this.pathArgs, this.pathKwargs, named);
      const args = named ? [this.pathKwargs] : this.pathArgs;
      const result = this.#call(method.toLowerCase(), fn, args);
      if (isThenable(result)) await result;
      if (!this.#out.finished && !this.#detached) this.finish();
    } catch (err) {
      try {
        this.#handleException(err);
      } catch (fatal) {
        // Error handling itself failed (a throwing logFunction, a bad status): never let it
        // escape as an unhandled rejection, which would stop the process.
        this.#lastResort(fatal);
      }
    } finally {
      if (this.#inFlight !== null) watch!.leave(this.#inFlight);
    }
  }

  /**
   * The request's params, query, headers and body as validated and coerced by the class's
   * `static schema` (each `undefined` when the method's schema does not declare it).
   */
  get valid(): ValidInput {
    return this.#valid ?? emptyValid();
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
    this.#out.setStatus(status, reason);
  }

  /** The status code of the response. */
  getStatus(): number {
    return this.#out.status;
  }

  /** Sets a header, replacing any value it had. CR, LF and other controls throw. */
  setHeader(name: string, value: string | number | Date): void {
    this.#out.setHeader(name, value);
  }

  /** Adds a value to a header that may repeat. */
  addHeader(name: string, value: string | number | Date): void {
    this.#out.addHeader(name, value);
  }

  /** Removes a header. */
  clearHeader(name: string): void {
    this.#out.clearHeader(name);
  }

  /** A header set on the response so far. */
  getHeader(name: string): string | string[] | undefined {
    return this.#out.getHeader(name);
  }

  /** Resets headers, status and buffered body (cookies set so far are kept, as in Tornado). */
  clear(): void {
    this.#out.clear();
    this.setDefaultHeaders();
  }

  /**
   * Buffers output: a string (HTML by default), bytes, or a plain object/array sent as JSON.
   */
  write(chunk: string | Uint8Array | object): void {
    // A response schema for the status serializes through its compiled serializer.
    const serialize = typeof chunk === "object" && !(chunk instanceof Uint8Array) ? this.#schema?.serializer(this.request.method, this.#out.status) : undefined;
    if (serialize === undefined) this.#out.write(chunk);
    else this.#out.writeJson(serialize(chunk));
  }

  /**
   * Sends the headers and what is buffered; later writes stream (chunked on HTTP/1.1).
   * Resolves once the socket has taken the data (backpressure).
   */
  flush(): Promise<void> {
    return this.#out.flush(this.newCookieHeaders());
  }

  /** Finishes the response, optionally writing a last chunk. A second call throws. */
  finish(chunk?: string | Uint8Array | object): void {
    if (this.#out.finished) throw new TyphoonError(ErrorCode.RESPONSE_FINISHED, "finish() called twice");
    if (chunk !== undefined) this.write(chunk);
    this.#out.finish(this, this.newCookieHeaders());
    this.#afterFinish();
  }

  /** Whether the response has been finished. */
  get finished(): boolean {
    return this.#out.finished;
  }

  /** Whether the headers have been sent. */
  get headersWritten(): boolean {
    return this.#out.headersWritten;
  }

  static {
    // The built-in handlers (HealthHandler, WebSocketHandler) read and listen to the server's
    // draining state; a module function keeps it off the public class.
    drainStateOf = (handler) => handler.#ctx.server.drain;
  }

  /**
   * The URL of a file under the `staticPath` setting, with a `?v=<content hash>` that lets
   * `StaticFileHandler` send it with a long `Cache-Control` (Tornado's `static_url`).
   *
   * @example
   * this.write(`<script src="${this.staticUrl("chat.js")}"></script>`); // /static/chat.js?v=3f2a...
   * this.staticUrl("chat.js", { includeHost: true }); // http://example.com/static/chat.js?v=3f2a...
   */
  staticUrl(path: string, options: { includeHost?: boolean } = {}): string {
    const url = this.application.staticUrl(path);
    return options.includeHost === true ? `${this.request.protocol}://${this.request.host}${url}` : url;
  }

  /** Redirects with 302 (or 301 when permanent, or an explicit 3xx status) and finishes. */
  redirect(url: string, permanent = false, status?: number): void {
    if (this.#out.headersWritten) throw new TyphoonError(ErrorCode.RESPONSE_FINISHED, "Cannot redirect after headers have been written");
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
    if (this.#out.headersWritten) {
      // The status line is gone: the only honest signal left is to cut the connection.
      log.error(`Cannot send error ${status} after headers were written; closing the connection`);
      if (!this.#out.finished) {
        this.#out.abort();
        this.#afterFinish();
      }
      return;
    }
    this.clear();
    const error = info.error;
    try {
      this.setStatus(status, error instanceof HTTPError ? error.reason : undefined);
    } catch (err) {
      // An impossible status (a reason that cannot be sent becomes "Unknown"): answer 500.
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
      this.#out.clearBody();
    }
    if (!this.#out.finished) this.finish();
  }

  /** Hook: writes the error page. The default is HTML, or JSON when `Accept` prefers it. */
  writeError(status: number, info: { error?: unknown } = {}): void {
    const error = info.error;
    const serveTrace = this.settings.serveTraceback ?? this.settings.debug ?? false;
    const trace = serveTrace && error !== undefined && !(error instanceof HTTPError) ? errorText(error) : undefined;
    const page = error instanceof ValidationError ? validationPage(error.failures, this.request.headers.accept)
      : errorPage(status, this.#out.reason, this.request.headers.accept, trace);
    this.setHeader("Content-Type", page.contentType);
    this.finish(page.body);
  }

  // ---- Internals ----------------------------------------------------------------------------

  // A handler with its own decodeArgument gets each path group's bytes (Tornado's
  // decode_argument(value, name)); its answer replaces the group.
  #decodePathArgs(): void {
    const decode = (value: string | undefined, name?: string): string | undefined =>
      value === undefined ? undefined : this.decodeArgument(percentBytes(value, false), name);
    const self = this as { pathArgs: (string | undefined)[]; pathKwargs: Record<string, string | undefined> };
    self.pathArgs = this.pathArgs.map((value) => decode(value));
    if (this.pathKwargs !== NO_KWARGS) {
      const named = Object.create(null) as Record<string, string | undefined>;
      for (const [name, value] of Object.entries(this.pathKwargs)) named[name] = decode(value, name);
      self.pathKwargs = named;
    }
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
      if (!this.#out.finished) this.finish(err.chunk === undefined ? undefined : (err.chunk as string));
      return;
    }
    if (this.#out.finished || this.#detached) {
      log.error(`Exception after the response was finished in ${this.#summary()}`, err);
      return;
    }
    if (err instanceof HTTPError) {
      if (err.logMessage !== undefined) log.warn(`${err.status} ${this.#summary()}: ${err.logMessage}`);
      // The unread body would be parsed as the next request: close the connection after answering.
      if (err.status === 413 || err.status === 408) this.#out.closeAfter();
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
    this.#out.lastResort();
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

// What the writer needs of the settings and the server; read when a response needs it.
function responseRules(settings: HandlerSettings, server: ServerContext): ResponseRules {
  return {
    compress: settings.compressResponse === true,
    etag: settings.etag !== false,
    closing: () => server.noKeepAlive || server.drain.draining,
  };
}

const NO_KWARGS: Record<string, string | undefined> = Object.freeze(Object.create(null) as Record<string, string | undefined>);

/** The empty named-groups object handlers of positional rules get. */
export function noKwargs(): Record<string, string | undefined> {
  return NO_KWARGS;
}
