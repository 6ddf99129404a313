/**
 * typhoon's built-in handlers (package subpath `typhoon/handlers`), re-exported by `core/index.ts`.
 */
export { StaticFileHandler, CACHE_MAX_AGE } from "./static.ts";
export type { StaticFileOptions } from "./static.ts";
export { RedirectHandler } from "./redirect.ts";
export type { RedirectOptions } from "./redirect.ts";
export { ErrorHandler } from "./error.ts";
export type { ErrorHandlerOptions } from "./error.ts";
export { FallbackHandler } from "./fallback.ts";
export type { FallbackOptions, NodeListener } from "./fallback.ts";
export { HealthHandler } from "./health.ts";
export { WebSocketHandler, WebSocketClosedError, DEFAULT_MAX_MESSAGE_SIZE } from "./websocket.ts";
export { OpenAPIHandler } from "./openapi.ts";
