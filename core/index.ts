/**
 * typhoon's public surface: everything `../shared/API.md` names, and nothing else.
 */
export { Application, url } from "./web/app.ts";
export type { AppSettings, HandlerClass, Rule, URLSpec } from "./web/app.ts";
export { RequestHandler } from "./web/handler.ts";
export type { HTTPMethod } from "./web/methods.ts";
export type { GetSignedCookieOptions, SignedCookieOptions } from "./web/handler-io.ts";
export { HTTPServerRequest } from "./web/request.ts";
export type { ArgumentMap, FileMap, UploadedFile } from "./http/body.ts";
export { HTTPServer } from "./server/httpserver.ts";
export type { RequestListener, Servable } from "./server/httpserver.ts";
export type { HTTPServerOptions } from "./server/options.ts";
export { cpuCount, forkProcesses, isDraining, taskId } from "./server/process.ts";
export type { ForkOptions, Scheduling, StartOptions } from "./server/process.ts";
export { ThreadPoolExecutor } from "./executor/pool.ts";
export type { ExecutorStats, SubmitOptions, TaskProxy, ThreadPoolOptions } from "./executor/pool.ts";
export { addslash, authenticated, removeslash, streamRequestBody } from "./web/decorators.ts";
export type { InjectOptions, InjectResponse } from "./web/inject.ts";
export {
  AbortError, ErrorCode, ExecutorError, Finish, HTTPError, MissingArgumentError, TimeoutError, TyphoonError,
} from "./errors.ts";
export type { ErrorCodeValue } from "./errors.ts";
export { IOLoop, TimeoutHandle } from "./loop/ioloop.ts";
export type { Executor, IOLoopOptions, RunSyncOptions } from "./loop/ioloop.ts";
export { PeriodicCallback } from "./loop/periodic.ts";
export type { PeriodicCallbackOptions } from "./loop/periodic.ts";
export type { LoopStats } from "./loop/loop-monitor.ts";
export {
  createSignedValue, createXsrfToken, decodeSignedValue, decodeXsrfToken, getSignatureKeyVersion, xsrfTokensMatch,
} from "./http/signing.ts";
export type { CreateSignedValueOptions, DecodeSignedValueOptions, SecretSpec, XsrfToken } from "./http/signing.ts";
export { formatHttpDate, parseCookies, serializeCookie } from "./http/cookies.ts";
export type { CookieOptions } from "./http/cookies.ts";
export { setLogger } from "./log.ts";
export type { LogLevel, LogSink } from "./log.ts";
export { withServer } from "./testing.ts";
export {
  DEFAULT_MAX_MESSAGE_SIZE, CACHE_MAX_AGE, ErrorHandler, FallbackHandler, HealthHandler, RedirectHandler, StaticFileHandler,
  WebSocketClosedError, WebSocketHandler,
} from "../handlers/index.ts";
export type { ErrorHandlerOptions, FallbackOptions, NodeListener, RedirectOptions, StaticFileOptions } from "../handlers/index.ts";
