/**
 * `ErrorHandler`: answers every request with one status (a rule that retires a URL with 410,
 * or a `defaultHandlerClass` that answers 404). Tornado's `ErrorHandler`.
 */
import { ErrorCode, HTTPError, TyphoonError } from "../core/errors.ts";
import { RequestHandler } from "../core/web/handler.ts";

/** Init arguments of `ErrorHandler`. */
export interface ErrorHandlerOptions {
  statusCode: number;
}

/**
 * Answers `statusCode` to any method, before the method check and the XSRF check (so an
 * unknown URL is a 404, not a 405 or a 403).
 *
 * @example
 * new Application([["/old/.*", ErrorHandler, { statusCode: 410 }]]);
 */
export class ErrorHandler extends RequestHandler {
  override initialize(options?: unknown): void {
    const status = (options as Partial<ErrorHandlerOptions> | undefined)?.statusCode;
    if (typeof status !== "number") throw new TyphoonError(ErrorCode.HANDLER_ARGS, "ErrorHandler needs { statusCode } as its init arguments");
    throw new HTTPError(status);
  }

  // Tornado's ErrorHandler skips XSRF: a POST to a retired URL gets its status, not a 403.
  override checkXsrfCookie(): void {}
}
