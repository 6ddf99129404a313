/**
 * `FallbackHandler`: hands the request to any node `(req, res)` application (Express, a
 * `connect` stack, a plain listener) and lets it answer. Tornado's `FallbackHandler`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCode, TyphoonError } from "../core/errors.ts";
import { RequestHandler } from "../core/web/handler.ts";

/** A node request listener. */
export type NodeListener = (req: IncomingMessage, res: ServerResponse) => void;

/** Init arguments of `FallbackHandler`. */
export interface FallbackOptions {
  fallback: NodeListener;
}

/**
 * Mounts a node app under typhoon's routing. The body is left unread for the app; `req.url`
 * is the full original target. With `xsrfCookies` on, unsafe methods still need the
 * `X-XSRFToken` header (the form field is in the unread body), as in Tornado.
 *
 * @example
 * const legacy = express();
 * new Application([["/api/.*", ApiHandler], [".*", FallbackHandler, { fallback: legacy }]]);
 */
export class FallbackHandler extends RequestHandler {
  // The mounted app reads the body itself.
  static override streamRequestBody = true;
  #fallback: NodeListener | null = null;

  override initialize(options?: unknown): void {
    const fallback = (options as Partial<FallbackOptions> | undefined)?.fallback;
    if (typeof fallback !== "function") throw new TyphoonError(ErrorCode.HANDLER_ARGS, "FallbackHandler needs { fallback: (req, res) => void }");
    this.#fallback = fallback;
  }

  override prepare(): void {
    const { req, res } = this.detach();
    this.#fallback!(req, res);
  }

  // Never called (prepare() detaches); they exist so every method passes the 405 check.
  get(): void {}
  head(): void {}
  post(): void {}
  put(): void {}
  patch(): void {}
  delete(): void {}
  options(): void {}
}
