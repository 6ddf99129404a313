/**
 * `HTTPServer`'s options, their defaults, and the resolved per-server context the request path
 * reads on every request (limits, proxy trust, whether the server is draining).
 */
import type { SecureContextOptions, TlsOptions } from "node:tls";
import { ErrorCode, TyphoonError } from "../errors.ts";

/** Options of `new HTTPServer(app, options)`. Sizes in bytes, times in ms. */
export interface HTTPServerOptions {
  /** Trust `X-Real-Ip`, `X-Forwarded-For`, `X-Forwarded-Proto`/`X-Scheme` (behind a proxy). */
  xheaders?: boolean;
  /** Proxies to skip when reading `X-Forwarded-For` from the right. */
  trustedDownstream?: string[];
  /** Close every connection after its response. */
  noKeepAlive?: boolean;
  /** Largest request body (default 100 MiB). Over it: 413, and the body is not read. */
  maxBodySize?: number;
  /** Largest request head (default 16 KiB, Node's). Over it: 431. */
  maxHeaderSize?: number;
  /** How long an idle keep-alive connection is kept (default 60 s). */
  idleConnectionTimeout?: number;
  /** How long a client may take to send the request head (default 20 s). Then: 408. */
  headersTimeout?: number;
  /** Longest pause while receiving a body (default 60 s). Then: 408. */
  bodyTimeout?: number;
  /** Decompress gzip/deflate request bodies (`Content-Encoding`). */
  decompressRequest?: boolean;
  /** `node:tls` options: the server speaks HTTPS. */
  ssl?: TlsOptions & SecureContextOptions;
  /** Grace period for in-flight requests when stopping on a signal (default 30 s). */
  drainTimeout?: number;
}

/** The resolved options plus live state, as the request path reads them. */
export interface ServerContext {
  readonly xheaders: boolean;
  readonly trustedDownstream: readonly string[];
  readonly noKeepAlive: boolean;
  readonly maxBodySize: number;
  readonly bodyTimeout: number;
  readonly decompressRequest: boolean;
  /** True while the server drains: responses say `Connection: close`. */
  draining: boolean;
}

/** Default limits. */
export const DEFAULTS = {
  maxBodySize: 100 * 1024 * 1024,
  maxHeaderSize: 16 * 1024,
  idleConnectionTimeout: 60_000,
  headersTimeout: 20_000,
  bodyTimeout: 60_000,
  drainTimeout: 30_000,
} as const;

/** Resolves options into the context shared with the request path. Throws for invalid values. */
export function serverContext(options: HTTPServerOptions = {}): ServerContext {
  for (const key of ["maxBodySize", "maxHeaderSize", "idleConnectionTimeout", "headersTimeout", "bodyTimeout", "drainTimeout"] as const) {
    const value = options[key];
    if (value !== undefined && !(typeof value === "number" && value >= 0 && !Number.isNaN(value))) {
      throw new TyphoonError(ErrorCode.SERVER_OPTION, `HTTPServer option ${key} must be a number ≥ 0, got ${String(value)}`);
    }
  }
  return {
    xheaders: options.xheaders === true,
    trustedDownstream: options.trustedDownstream ?? [],
    noKeepAlive: options.noKeepAlive === true,
    maxBodySize: options.maxBodySize ?? DEFAULTS.maxBodySize,
    bodyTimeout: options.bodyTimeout ?? DEFAULTS.bodyTimeout,
    decompressRequest: options.decompressRequest === true,
    draining: false,
  };
}

/** The context of `app.callback()` and `app.inject()`, where no `HTTPServer` is involved. */
export const STANDALONE: ServerContext = Object.freeze({ ...serverContext(), draining: false });
