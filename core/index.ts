/**
 * typhoon's public surface: everything `../shared/API.md` names, and nothing else.
 */
export { Application, url } from "./app.ts";
export type { AppSettings, HandlerClass, Rule, URLSpec } from "./app.ts";
export { RequestHandler } from "./handler.ts";
export type { HTTPMethod } from "./methods.ts";
export type { GetSignedCookieOptions, SignedCookieOptions } from "./handler-io.ts";
export { HTTPServerRequest } from "./request.ts";
export type { ArgumentMap, FileMap, UploadedFile } from "./body.ts";
export { HTTPServer } from "./httpserver.ts";
export type { RequestListener, Servable } from "./httpserver.ts";
export type { HTTPServerOptions } from "./server-options.ts";
export { cpuCount, forkProcesses, isDraining, taskId } from "./process.ts";
export type { ForkOptions, Scheduling, StartOptions } from "./process.ts";
export { ThreadPoolExecutor } from "./executor/pool.ts";
export type { ExecutorStats, SubmitOptions, TaskProxy, ThreadPoolOptions } from "./executor/pool.ts";
export { addslash, authenticated, removeslash, streamRequestBody } from "./decorators.ts";
export type { InjectOptions, InjectResponse } from "./inject.ts";
export {
  AbortError, ErrorCode, ExecutorError, Finish, HTTPError, MissingArgumentError, TimeoutError, TyphoonError,
} from "./errors.ts";
export type { ErrorCodeValue } from "./errors.ts";
export { IOLoop, TimeoutHandle } from "./ioloop.ts";
export type { Executor, IOLoopOptions, RunSyncOptions } from "./ioloop.ts";
export { PeriodicCallback } from "./periodic.ts";
export type { PeriodicCallbackOptions } from "./periodic.ts";
export type { LoopStats } from "./loop-monitor.ts";
export {
  createSignedValue, createXsrfToken, decodeSignedValue, decodeXsrfToken, getSignatureKeyVersion, xsrfTokensMatch,
} from "./signing.ts";
export type { CreateSignedValueOptions, DecodeSignedValueOptions, SecretSpec, XsrfToken } from "./signing.ts";
export { formatHttpDate, parseCookies, serializeCookie } from "./cookies.ts";
export type { CookieOptions } from "./cookies.ts";
export { setLogger } from "./log.ts";
export type { LogLevel, LogSink } from "./log.ts";
export { withServer } from "./testing.ts";
export {
  DEFAULT_MAX_MESSAGE_SIZE, CACHE_MAX_AGE, ErrorHandler, FallbackHandler, HealthHandler, RedirectHandler, StaticFileHandler,
  WebSocketClosedError, WebSocketHandler,
} from "../handlers/index.ts";
export type { ErrorHandlerOptions, FallbackOptions, NodeListener, RedirectOptions, StaticFileOptions } from "../handlers/index.ts";
