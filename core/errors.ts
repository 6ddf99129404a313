/**
 * The errors a caller of typhoon can see, and the catalogue of their stable codes.
 *
 * Every error typhoon throws carries a `code` from {@link ErrorCode}. A code names one meaning
 * and is never reused for another (Fastify's error catalogue). What a client is sent is kept
 * apart from what is logged: {@link HTTPError.logMessage} is for the log only (Tornado's
 * `log_message`).
 */
import { STATUS_CODES } from "node:http";

/** The stable `E_...` codes, one per meaning. */
export const ErrorCode = {
  /** An HTTP error answered to the client with its status. */
  HTTP: "E_HTTP",
  /** A required argument was missing (400). */
  MISSING_ARGUMENT: "E_MISSING_ARGUMENT",
  /** Control flow: the handler finished the request early (not a failure). */
  FINISH: "E_FINISH",
  /** A route pattern is not a valid regular expression, or mixes named and positional groups. */
  ROUTE_PATTERN: "E_ROUTE_PATTERN",
  /** `reverseUrl` was given an unknown name, the wrong argument count, or a pattern it cannot reverse. */
  REVERSE_URL: "E_REVERSE_URL",
  /** A header name or value is invalid (CR, LF or another control character). */
  INVALID_HEADER: "E_INVALID_HEADER",
  /** `write`/`finish` was called after the response was finished. */
  RESPONSE_FINISHED: "E_RESPONSE_FINISHED",
  /** A request body is larger than `maxBodySize` (413). */
  BODY_TOO_LARGE: "E_BODY_TOO_LARGE",
  /** A request body could not be parsed (invalid JSON, multipart, encoding). */
  BAD_BODY: "E_BAD_BODY",
  /** A cookie name or value is not valid. */
  INVALID_COOKIE: "E_INVALID_COOKIE",
  /** A signing secret is missing or a key version is unknown. */
  COOKIE_SECRET: "E_COOKIE_SECRET",
  /** A thread-pool failure: a thread died, the queue is full, the pool is shut down. */
  EXECUTOR: "E_EXECUTOR",
  /** An operation did not complete within its timeout. */
  TIMEOUT: "E_TIMEOUT",
  /** An operation was aborted through an `AbortSignal`. */
  ABORT: "E_ABORT",
  /** An `HTTPServer` option or listening address is invalid (a limit, a port). */
  SERVER_OPTION: "E_SERVER_OPTION",
  /** An `HTTPServer` or supervisor call out of order (start before bind, listening twice, supervising twice). */
  SERVER_STATE: "E_SERVER_STATE",
  /** A process option is invalid (process count, `maxRestarts`, scheduling). */
  PROCESS_OPTION: "E_PROCESS_OPTION",
  /** A status code is invalid for its use (outside 100–999, or a redirect that is not 3xx). */
  STATUS_CODE: "E_STATUS_CODE",
  /** A built-in handler was given init arguments it cannot use (`StaticFileHandler` without `path` ...). */
  HANDLER_ARGS: "E_HANDLER_ARGS",
  /** A feature was used without the setting it needs (`staticUrl()` without `staticPath`, `@authenticated` without `loginUrl`). */
  SETTING_MISSING: "E_SETTING_MISSING",
  /** An async `getCurrentUser()` was read synchronously, before it resolved. */
  CURRENT_USER_ASYNC: "E_CURRENT_USER_ASYNC",
  /** A signed value or XSRF token was asked of an unsupported version, clock or empty token. */
  SIGNED_VALUE: "E_SIGNED_VALUE",
  /** A timer or loop argument is invalid (a period, jitter, timeout or deadline). */
  TIMER_ARGUMENT: "E_TIMER_ARGUMENT",
  /** The supervisor gave up after too many child restarts. */
  TOO_MANY_RESTARTS: "E_TOO_MANY_RESTARTS",
  /** A message was written to a WebSocket that is closed. */
  WEBSOCKET_CLOSED: "E_WEBSOCKET_CLOSED",
  /** `selectSubprotocol()` chose a WebSocket subprotocol the client did not offer. */
  WEBSOCKET_SUBPROTOCOL: "E_WEBSOCKET_SUBPROTOCOL",
  /** A request failed its handler's schema (400, every failure listed). */
  VALIDATION: "E_VALIDATION",
  /** A handler's `static schema` is invalid (thrown when the `Application` is built). */
  SCHEMA: "E_SCHEMA",
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error typhoon throws on purpose. */
export class TyphoonError extends Error {
  readonly code: ErrorCodeValue;
  constructor(code: ErrorCodeValue, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * Throw from a handler to answer with an HTTP error status.
 *
 * `logMessage` is written to the log and never sent to the client; `reason` replaces the
 * standard reason phrase in the status line and the default error page.
 *
 * @example
 * throw new HTTPError(404, "no user %s", { reason: "No Such User" });
 */
export class HTTPError extends TyphoonError {
  /** The code of this class's errors; subclasses with a meaning of their own override it. */
  protected static readonly errorCode: ErrorCodeValue = ErrorCode.HTTP;
  readonly status: number;
  readonly logMessage: string | undefined;
  readonly reason: string | undefined;
  constructor(status = 500, logMessage?: string, options: { reason?: string; cause?: unknown } = {}) {
    super((new.target as unknown as { errorCode: ErrorCodeValue }).errorCode, `HTTP ${status}: ${options.reason ?? reasonPhrase(status)}${logMessage ? ` (${logMessage})` : ""}`,
      options.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.logMessage = logMessage;
    this.reason = options.reason;
  }
}

/** A required argument is missing: answered with 400. */
export class MissingArgumentError extends HTTPError {
  protected static override readonly errorCode: ErrorCodeValue = ErrorCode.MISSING_ARGUMENT;
  readonly argName: string;
  constructor(argName: string) {
    super(400, `Missing argument ${argName}`, { reason: `Missing argument ${argName}` });
    this.argName = argName;
  }
}

/** A request body over `maxBodySize`: answered with 413, wherever the limit was found. */
export class BodyTooLargeError extends HTTPError {
  protected static override readonly errorCode: ErrorCodeValue = ErrorCode.BODY_TOO_LARGE;
  constructor(logMessage: string) {
    super(413, logMessage);
  }
}

/** A request body that cannot be parsed (invalid JSON, multipart, encoding): answered with 400. */
export class BadBodyError extends HTTPError {
  protected static override readonly errorCode: ErrorCodeValue = ErrorCode.BAD_BODY;
  constructor(logMessage: string, options: { cause?: unknown } = {}) {
    super(400, logMessage, options);
  }
}

/** One failure of request validation: where (`in`), a JSON Pointer into that part, and why. */
export interface ValidationFailure {
  readonly in: "params" | "query" | "headers" | "body";
  readonly path: string;
  readonly message: string;
}

/**
 * A request failed its handler's schema: answered with 400 and a page listing `failures`.
 * `writeError` receives it as `info.error`.
 */
export class ValidationError extends HTTPError {
  protected static override readonly errorCode: ErrorCodeValue = ErrorCode.VALIDATION;
  readonly failures: readonly ValidationFailure[];
  constructor(failures: readonly ValidationFailure[]) {
    super(400, `Request validation failed: ${failures.map((f) => `${f.in}${f.path} ${f.message}`).join("; ")}`);
    this.failures = failures;
  }
}

/**
 * Throw from a handler to end the request normally: what was written so far is sent.
 * Tornado's `tornado.web.Finish`.
 */
export class Finish extends TyphoonError {
  readonly chunk: unknown;
  constructor(chunk?: unknown) {
    super(ErrorCode.FINISH, "Finish");
    this.chunk = chunk;
  }
}

/** A thread-pool failure: the task's thread died, the queue is full, or the pool is shut down. */
export class ExecutorError extends TyphoonError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.EXECUTOR, message, options);
  }
}

/** An operation (a task, `runSync`) did not complete within its timeout. */
export class TimeoutError extends TyphoonError {
  constructor(message = "Operation timed out", options?: ErrorOptions) {
    super(ErrorCode.TIMEOUT, message, options);
  }
}

/** An operation was aborted through its `AbortSignal`. */
export class AbortError extends TyphoonError {
  constructor(message = "Operation aborted", options?: ErrorOptions) {
    super(ErrorCode.ABORT, message, options);
  }
}

/** The standard reason phrase for a status code, or `Unknown`. */
export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? "Unknown";
}
