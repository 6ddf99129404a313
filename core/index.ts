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
export { listenFromEnvironment } from "./server/listen.ts";
export type { FdTarget, ListenTarget, UnixSocketTarget } from "./server/listen.ts";
export type { HTTPServerOptions } from "./server/options.ts";
export { cpuCount, forkProcesses, isDraining, taskId } from "./server/process.ts";
export type { ForkOptions, StartOptions } from "./server/process.ts";
export type { Scheduling } from "./server/options.ts";
export { ThreadPoolExecutor } from "./executor/pool.ts";
export type { ExecutorStats, SubmitOptions, TaskFunction, TaskProxy, ThreadPoolOptions } from "./executor/pool.ts";
export type { ApplicationView, HandlerSettings } from "./web/settings.ts";
export type { Body } from "./http/headers.ts";
export type { Method } from "./web/decorators.ts";
export { addslash, authenticated, removeslash, streamRequestBody } from "./web/decorators.ts";
export type { InjectOptions, InjectResponse } from "./web/inject.ts";
export {
  AbortError, ErrorCode, ExecutorError, Finish, HTTPError, MissingArgumentError, TimeoutError, TyphoonError, ValidationError,
} from "./errors.ts";
export type { ErrorCodeValue, ValidationFailure } from "./errors.ts";
export type {
  FromSchema, FromType, HandlerSchema, JSONSchema, JSONType, MethodSchema, ResponseSchemas, SchemaOf, ValidInput, ValidOf, Validated,
} from "./web/schema-types.ts";
export type { OpenAPIDocument, OpenAPIInfo, OpenAPIOptions } from "./web/openapi.ts";
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
export { createLogger, setLogger } from "./log.ts";
export type { LogDestination, LogFn, Logger, LoggerOptions, LogLevel, LogSink } from "./log.ts";
export { withServer } from "./testing.ts";
export { Locale, browserLocale, getSupportedLocales, loadTranslations, setDefaultLocale } from "./web/locale.ts";
export type { FormatDateOptions } from "./web/locale.ts";
export { NunjucksLoader, TemplateError } from "./web/template.ts";
export type { NunjucksLoaderOptions, TemplateLoader, TemplateSettings } from "./web/template.ts";
export {
  DEFAULT_MAX_MESSAGE_SIZE, CACHE_MAX_AGE, ErrorHandler, FallbackHandler, HealthHandler, MetricsHandler, OpenAPIHandler, RedirectHandler, StaticFileHandler,
  WebSocketClosedError, WebSocketHandler,
} from "../handlers/index.ts";
export type { ErrorHandlerOptions, FallbackOptions, NodeListener, RedirectOptions, StaticFileOptions } from "../handlers/index.ts";
