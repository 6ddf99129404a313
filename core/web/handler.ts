/**
 * `RequestHandler`: Tornado's request lifecycle in one readable `execute()`, and the output
 * side of a handler (status, headers, buffered or streamed body, errors, redirects).
 * Arguments, cookies, signed cookies, XSRF and users live in `handler-io.ts`, the base class.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AbortError, ErrorCode, Finish, HTTPError, TimeoutError, TyphoonError, ValidationError } from "../errors.ts";
import { log, type Logger } from "../log.ts";
import { errorText } from "../log-record.ts";
import { REQUEST_ID_HEADER, requestIdOf } from "./access-log.ts";
import { reportBlocking } from "../loop/loop-monitor.ts";
import type { BlockingWatch, InFlight } from "../loop/blocking.ts";
import { hasBody, readBody, receiveStream } from "../http/body-read.ts";
import { parseBody } from "../http/body.ts";
import { LOWER_METHODS, SAFE_METHODS, allowedMethods, checkSupported, methodFunction, type Hook } from "./methods.ts";
import { etagOf } from "../http/etag.ts";
import type { Body } from "../http/headers.ts";
import { errorPage } from "../http/error-page.ts";
import { Response, describeRequest } from "../http/respond.ts";
import { HandlerIO } from "./handler-io.ts";
import { percentBytes } from "../http/percent.ts";
import { setRequestBody, type HTTPServerRequest } from "./request.ts";
import type { ServerContext } from "../server/options.ts";
import type { DrainState } from "../server/drain-state.ts";
import type { ApplicationView } from "./settings.ts";
import { compileHandlerSchema, emptyValid, validationPage, type CompiledSchema } from "./schema.ts";
import type { HandlerSchema, ValidInput } from "./schema-types.ts";
import { browserLocale, type Locale } from "./locale.ts";
import { defaultNamespace, publicErrorSummary, renderPage, renderText } from "./template.ts";

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
  /** The application's access log and metrics (or `logFunction`), called once the request is finished. */
  readonly logRequest: (handler: RequestHandler, route: string, bytes: number) => void;
  /** The route label of logs and metrics: the rule's name or pattern (default `(none)`). */
  readonly route?: string;
  /** Called when the handler hands the request away (`detach()`): it will not finish here. */
  readonly detached?: () => void;
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
  // With blockingThreshold: the watchdog's entry once the request has gone asynchronous (a request
  // served in one synchronous run never needs it), the last hook entered, and the last clock
  // reading of the synchronous run under way (NaN outside one), where the next hook's time starts.
  #inFlight: InFlight | null = null;
  #hook = "initialize";
  #clock = Number.NaN;
  #schema: CompiledSchema | undefined;
  #valid: ValidInput | undefined;
  #requestId: string | undefined;
  #log: Logger | undefined;
  #abort: AbortController | null = null;
  #deadline: NodeJS.Timeout | undefined;
  #locale: Locale | null = null;
  // The function answering the request's method, found after prepare().
  #method: Hook | undefined = undefined;

  constructor(application: ApplicationView, request: HTTPServerRequest, ctx: HandlerContext) {
    super(application, request);
    this.#ctx = ctx;
    this.pathArgs = ctx.pathArgs;
    this.pathKwargs = ctx.pathKwargs;
    this.#blockingThreshold = application.settings.blockingThreshold;
    this.#out = new Response(ctx.res, ctx.req, this, application.settings, ctx.server);
    this.setDefaultHeaders();
  }

  // ---- The lifecycle ------------------------------------------------------------------------

  /**
   * Runs the request in Tornado's order: initialize → a method outside `supportedMethods` is a
   * 405 (before the body is read) → body → XSRF → prepare → a method that is not implemented
   * is a 405 (after prepare, so a prepare() that finishes or raises 404 wins) → the method →
   * finish → onFinish. `currentUser` is not resolved here: it is lazy, as in Tornado.
   * Called by the application; never throws, and its promise (if any) never rejects.
   *
   * The steps ({@link #step}) run one after another without a promise as long as each ends
   * synchronously: a handler whose hooks and method are synchronous is served with no promise
   * and no microtask. The first step that returns a promise (an async hook, a body to read)
   * hands the rest to {@link #resumeAfter}, and `execute()` returns that promise.
   */
  execute(): void | Promise<void> {
    const res = this.#ctx.res;
    // Only handlers that override the hook pay for a close listener.
    if (this.onConnectionClose !== RequestHandler.prototype.onConnectionClose) res.once("close", () => this.#connectionClosed());
    const timeout = this.#ctx.server.requestTimeout;
    if (timeout > 0) this.#deadline = setTimeout(() => this.#timedOut(timeout), timeout);
    // The first hook's time starts when the request arrived: one clock reading fewer.
    if (this.#ctx.watch !== undefined) this.#clock = this.request.startTime;
    return this.#runFrom(Step.Initialize);
  }

  /** One step of the lifecycle: a promise while it is still running, {@link STOP} once the request is done. */
  #step(step: Step): unknown {
    const cls = this.constructor as typeof RequestHandler;
    switch (step) {
      case Step.Initialize:
        if (cls.schema !== undefined) this.#schema = compileHandlerSchema(cls);
        // The base hook does nothing: not calling it saves a call (and its timing).
        if (this.initialize === RequestHandler.prototype.initialize) return undefined;
        return this.#call("initialize", this.initialize, [this.#ctx.initArgs]);
      case Step.Body: {
        checkSupported(this, this.request.method);
        if (this.#ctx.rawGroups === true) this.#decodePathArgs();
        const req = this.#ctx.req;
        if (cls.streamRequestBody || !hasBody(req)) return undefined;
        return readBody(req, this.#ctx.server).then((body) => {
          setRequestBody(this.request, body, parseBody(req.headers["content-type"], body));
        });
      }
      case Step.Prepare:
        if (this.settings.xsrfCookies && !SAFE_METHODS.has(this.request.method)) this.checkXsrfCookie();
        if (this.prepare === RequestHandler.prototype.prepare) return undefined;
        return this.#call("prepare", this.prepare, NO_ARGS);
      case Step.StreamBody:
        // prepare() finished (or detached) the response: the method is not called.
        if (this.#out.finished || this.#detached) return STOP;
        this.#method = methodFunction(this, this.request.method);
        if (!cls.streamRequestBody) return undefined;
        return receiveStream(this.#ctx.req, this.#ctx.server, (chunk) => this.#call("dataReceived", this.dataReceived, [chunk]));
      case Step.Method: {
        const method = this.request.method;
        const named = this.pathKwargs !== NO_KWARGS;
        if (this.#schema !== undefined) this.#valid = this.#schema.validate(method, this.request, this.pathArgs, this.pathKwargs, named);
        return this.#call(LOWER_METHODS[method] ?? method.toLowerCase(), this.#method, named ? [this.pathKwargs] : this.pathArgs);
      }
      case Step.Finish:
        if (!this.#out.finished && !this.#detached) this.finish();
        return STOP;
    }
  }

  /** Runs the steps from `step` on while they end synchronously (see {@link execute}). */
  #runFrom(step: Step): void | Promise<void> {
    try {
      for (let outcome = this.#step(step); outcome !== STOP; outcome = this.#step(++step)) {
        if (isThenable(outcome)) {
          this.#watch();
          return this.#resumeAfter(outcome, step + 1);
        }
      }
    } catch (err) {
      this.#fail(err);
    }
    this.#leave();
  }

  /** The asynchronous rest: waits for the step that returned `pending`, then runs the next ones. */
  async #resumeAfter(pending: PromiseLike<unknown>, next: Step): Promise<void> {
    try {
      await pending;
    } catch (err) {
      this.#fail(err);
      this.#leave();
      return;
    }
    return this.#runFrom(next);
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

  /**
   * The request goes asynchronous: the blocking watchdog watches it from now on (a block after
   * an `await` is not inside any timed hook), and hook times no longer chain.
   */
  #watch(): void {
    const watch = this.#ctx.watch;
    if (watch === undefined) return;
    this.#clock = Number.NaN;
    if (this.#inFlight !== null) return;
    const request = this.request;
    this.#inFlight = { method: request.method, path: request.path, handler: this.constructor.name, hook: this.#hook, reqId: this.requestId, slot: -1 };
    watch.enter(this.#inFlight);
  }

  /**
   * The request is done with the lifecycle: the blocking watchdog stops watching it. A request
   * served in one synchronous run was never watched; what ran after its last hook (`finish()`:
   * the ETag, the write) is timed here instead.
   */
  #leave(): void {
    if (this.#inFlight !== null) {
      this.#ctx.watch!.leave(this.#inFlight);
      return;
    }
    const since = this.#clock;
    if (since !== since) return; // NaN: no blockingThreshold, or no synchronous run under way
    this.#clock = Number.NaN;
    const now = performance.now();
    if (now - since > this.#blockingThreshold!) this.#reportBlocking(this.#hook, now - since, now);
  }

  #reportBlocking(hook: string, ms: number, end: number): void {
    reportBlocking({ method: this.request.method, path: this.request.path, handler: this.constructor.name, hook, ms },
      (message) => this.log.warn(message));
    this.#ctx.watch?.noteReported(end);
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
    if (!this.#detached && !this.#out.finished) this.#ctx.detached?.();
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
    this.#stampRequestId();
    return this.#out.flush(this.newCookieHeaders());
  }

  /** Finishes the response, optionally writing a last chunk. A second call throws. */
  finish(chunk?: string | Uint8Array | object): void {
    if (this.#out.finished) throw new TyphoonError(ErrorCode.RESPONSE_FINISHED, "finish() called twice");
    if (chunk !== undefined) this.write(chunk);
    this.#stampRequestId();
    this.#out.finish(this.newCookieHeaders());
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

  /**
   * The request's id: the client's `X-Request-Id` (or the `requestIdHeader` setting's header)
   * when it is 1–200 visible ASCII characters, else a generated one. Sent back in that header,
   * and the `reqId` of every record about the request.
   */
  get requestId(): string {
    if (this.#requestId === undefined) {
      const header = this.settings.requestIdHeader;
      this.#requestId = requestIdOf(this.#ctx.req, header === false ? false : header === undefined ? REQUEST_ID_HEADER : header.toLowerCase());
    }
    return this.#requestId;
  }

  /**
   * The request's logger: the app's logger with `reqId` bound.
   *
   * @example
   * this.log.info({ user: id }, "profile updated");
   */
  get log(): Logger {
    return (this.#log ??= (this.settings.logger ?? log).child({ reqId: this.requestId }));
  }

  /**
   * Aborts when the request times out (`requestTimeout`; the client then gets 503 if nothing
   * was sent) or the client closes the connection first. Pass it to work that should stop then.
   */
  get signal(): AbortSignal {
    if (this.#abort === null) {
      const abort = this.#abort = new AbortController();
      const res = this.#ctx.res;
      res.once("close", () => {
        if (!res.writableFinished && !abort.signal.aborted) abort.abort(new AbortError("The client closed the connection"));
      });
    }
    return this.#abort.signal;
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

  // ---- Templates and locale (core/web/template.ts, core/web/locale.ts) ----------------------

  /**
   * Renders template `name` with the template namespace and `namespace`, and finishes the
   * response (`text/html; charset=UTF-8` unless a `Content-Type` was set). With the default
   * engine the page is finished before this returns, so awaiting it is optional.
   *
   * @example
   * async get(slug: string) { await this.render("entry.html", { entry: await db.entry(slug) }); }
   */
  render(name: string, namespace: Record<string, unknown> = {}): Promise<void> {
    return renderPage(this, name, namespace);
  }

  /** The text of template `name` rendered with the namespace and `namespace`. */
  renderString(name: string, namespace: Record<string, unknown> = {}): Promise<string> {
    const text = renderText(this, name, namespace);
    return typeof text === "string" ? Promise.resolve(text) : text;
  }

  /**
   * Hook: the names every template sees: `handler`, `request`, `currentUser`, `locale`, `_`,
   * `xsrfFormHtml()`, `staticUrl()`, `reverseUrl()`, `urlEscape()`, `jsonEncode()`. Extend it
   * with `{ ...super.getTemplateNamespace(), more }`.
   */
  getTemplateNamespace(): Record<string, unknown> {
    return defaultNamespace(this);
  }

  /** The user's locale: `getUserLocale()`, else `getBrowserLocale()`; assignable. */
  get locale(): Locale {
    this.#locale ??= this.getUserLocale() ?? this.getBrowserLocale();
    return this.#locale;
  }

  set locale(locale: Locale) {
    this.#locale = locale;
  }

  /** Hook: the locale of the signed-in user (from their settings), or `null` for the browser's. */
  getUserLocale(): Locale | null {
    return null;
  }

  /** The closest supported locale to the request's `Accept-Language` (by `q`), else `fallback`. */
  getBrowserLocale(fallback = "en_US"): Locale {
    return browserLocale(this.request.headers["accept-language"], fallback);
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
      this.log.error(`Cannot send error ${status} after headers were written; closing the connection`);
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
      this.log.error({ err }, `Invalid error status or reason for ${this.#summary()}`);
      status = 500;
      this.setStatus(500);
    }
    if (status === 405) this.setHeader("Allow", allowedMethods(this).join(", "));
    try {
      this.writeError(status, info);
    } catch (err) {
      this.log.error({ err }, `Uncaught exception in writeError for ${this.#summary()}`);
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
    const trace = serveTrace && error !== undefined && !(error instanceof HTTPError) ? errorText(error) : publicErrorSummary(error);
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
    this.#hook = hook;
    if (this.#inFlight !== null) this.#inFlight.hook = hook;
    // Within a synchronous run a hook's time starts at the run's last reading (the request's
    // arrival, or the end of the hook before); otherwise the clock is read now.
    const chained = this.#clock;
    const start = chained === chained ? chained : performance.now();
    try {
      return (fn as Callable).apply(this, args as unknown[]);
    } finally {
      const end = performance.now();
      if (chained === chained) this.#clock = end;
      if (end - start > threshold) this.#reportBlocking(hook, end - start, end);
    }
  }

  #handleException(err: unknown): void {
    if (err instanceof Finish) {
      if (!this.#out.finished) this.finish(err.chunk === undefined ? undefined : (err.chunk as string));
      return;
    }
    if (this.#out.finished || this.#detached) {
      // A handler that went on after requestTimeout answered for it: expected, not an error.
      if (this.#abort?.signal.reason instanceof TimeoutError && err instanceof TyphoonError && err.code === ErrorCode.RESPONSE_FINISHED) return;
      this.log.error({ err }, `Exception after the response was finished in ${this.#summary()}`);
      return;
    }
    if (err instanceof HTTPError) {
      if (err.logMessage !== undefined) this.log.warn(`${err.status} ${this.#summary()}: ${err.logMessage}`);
      // The unread body would be parsed as the next request: close the connection after answering.
      if (err.status === 413 || err.status === 408) this.#out.closeAfter();
      this.sendError(err.status, { error: err });
      return;
    }
    this.log.error({ err }, `Uncaught exception ${this.#summary()}`);
    this.sendError(500, { error: err });
  }

  #connectionClosed(): void {
    if (this.#detached || this.#ctx.res.writableFinished) return;
    try {
      this.onConnectionClose();
    } catch (err) {
      this.log.error({ err }, `Exception in onConnectionClose of ${this.#summary()}`);
    }
  }

  #lastResort(err: unknown): void {
    try {
      this.log.error({ err }, `Exception while handling an error in ${this.#summary()}`);
    } catch {
      // The logger is what failed; nothing is left to report to.
    }
    this.#out.lastResort();
  }

  #timedOut(timeout: number): void {
    this.#deadline = undefined;
    if (this.#out.finished || this.#detached) return;
    void this.signal;
    this.#abort!.abort(new TimeoutError(`The request took longer than requestTimeout (${timeout} ms)`));
    this.log.warn(`${this.#summary()} timed out after ${timeout} ms`);
    if (!this.#out.headersWritten) this.sendError(503);
  }

  #afterFinish(): void {
    if (this.#deadline !== undefined) clearTimeout(this.#deadline);
    this.#ctx.logRequest(this, this.#ctx.route ?? "(none)", this.#out.bytesWritten);
    try {
      const r = this.onFinish();
      if (isThenable(r)) r.then(undefined, (err: unknown) => this.log.error({ err }, `Exception in onFinish of ${this.#summary()}`));
    } catch (err) {
      this.log.error({ err }, `Exception in onFinish of ${this.#summary()}`);
    }
  }

  // The request's id goes back in its header (`requestIdHeader`), set last so clear() keeps it.
  #stampRequestId(): void {
    if (this.#out.headersWritten) return;
    const idHeader = this.settings.requestIdHeader;
    // An id is always a sane header value (visible ASCII, checked or generated).
    if (typeof idHeader === "string") this.#out.setHeader(idHeader, this.requestId);
    else this.#out.setCheckedHeader(REQUEST_ID_HEADER, this.requestId);
  }

  #summary(): string {
    return describeRequest(this.request);
  }
}

// The lifecycle's steps, in order (see RequestHandler.execute).
const enum Step { Initialize, Body, Prepare, StreamBody, Method, Finish }
/** What a step returns once the request needs no more steps. */
const STOP = Symbol("stop");
const NO_ARGS: readonly unknown[] = Object.freeze([]);

const NO_KWARGS: Record<string, string | undefined> = Object.freeze(Object.create(null) as Record<string, string | undefined>);

/** The empty named-groups object handlers of positional rules get. */
export function noKwargs(): Record<string, string | undefined> {
  return NO_KWARGS;
}
