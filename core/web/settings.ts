/**
 * What a handler sees of its application: the settings it reads and the application's view
 * (`reverseUrl`, `staticUrl`). The bottom of the web layer: it imports no other web file, so
 * the handler never imports the application that constructs it.
 */
import type { CookieOptions } from "../http/cookies.ts";
import type { SecretSpec } from "../http/signing.ts";

/** The application settings a handler reads (all optional). Apps may add their own keys. */
export interface HandlerSettings {
  /** Serve tracebacks and log more. */
  debug?: boolean;
  /** Send the stack of a 500's error in the error page. */
  serveTraceback?: boolean;
  /** gzip/brotli responses to clients that accept it. */
  compressResponse?: boolean;
  /** Automatic `ETag` and 304 (default true). */
  etag?: boolean;
  /** Secret for signed cookies: one string, or keys by version with `keyVersion`. */
  cookieSecret?: SecretSpec;
  /** The key version new signed cookies use when `cookieSecret` is a map. */
  keyVersion?: number;
  /** Require the XSRF token on POST, PUT, PATCH and DELETE. */
  xsrfCookies?: boolean;
  /** Name of the XSRF cookie (default `_xsrf`; a `__Host-` name works with `secure: true`). */
  xsrfCookieName?: string;
  /** Options of the XSRF cookie. */
  xsrfCookieOptions?: CookieOptions;
  /** Where `@authenticated` sends anonymous users. */
  loginUrl?: string;
  /** Directory served under `staticUrlPrefix` by `StaticFileHandler`. */
  staticPath?: string;
  /** Default `/static/`. */
  staticUrlPrefix?: string;
  /** WebSocket keepalive: a ping this often (ms). Off by default. */
  websocketPingInterval?: number;
  /** Close a WebSocket whose pong is this late (ms; default 3 × the interval, at least 30 s). */
  websocketPingTimeout?: number;
  /** Largest WebSocket message (bytes, default 10 MiB); larger ones close the socket with 1009. */
  websocketMaxMessageSize?: number;
  /** Log handler code that holds the event loop longer than this many ms. */
  blockingThreshold?: number;
  /** Answer 503 with `Retry-After` while the event-loop delay is above this many ms. */
  maxEventLoopDelay?: number;
  [key: string]: unknown;
}

/** The application as a handler sees it (`this.application`); `Application` implements it. */
export interface ApplicationView {
  readonly settings: HandlerSettings;
  /** The path of the rule named `name`, its groups filled with `args` (percent-encoded). */
  reverseUrl(name: string, ...args: unknown[]): string;
  /** The URL of a file under `staticPath`, versioned with `?v=<content hash>`. */
  staticUrl(path: string): string;
}
