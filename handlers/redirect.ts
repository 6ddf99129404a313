/**
 * `RedirectHandler`: redirects every GET to a URL built from the rule's path groups
 * (`{0}`, `{1}` ... or `{name}`), keeping the request's query string. Tornado's `RedirectHandler`.
 */
import { ErrorCode, TyphoonError } from "../core/errors.ts";
import { RequestHandler } from "../core/web/handler.ts";

/** Init arguments of `RedirectHandler`. */
export interface RedirectOptions {
  /** The target; `{0}`, `{1}` ... are the positional groups, `{name}` the named ones. */
  url: string;
  /** 301 when true (the default), else 302. */
  permanent?: boolean;
}

/**
 * Redirects to `url` with the path groups substituted and the query string kept.
 *
 * @example
 * new Application([["/docs/(.*)/(.*)", RedirectHandler, { url: "/manual/{1}/{0}" }]]);
 * // GET /docs/a/b?x=1 → 301 Location: /manual/b/a?x=1
 */
export class RedirectHandler extends RequestHandler {
  #url = "";
  #permanent = true;

  override initialize(options?: unknown): void {
    const o = options as Partial<RedirectOptions> | undefined;
    if (o === undefined || typeof o.url !== "string") {
      throw new TyphoonError(ErrorCode.HANDLER_ARGS, "RedirectHandler needs { url } as its init arguments");
    }
    this.#url = o.url;
    this.#permanent = o.permanent ?? true;
  }

  /** Sends the redirect. */
  get(): void {
    const positional = this.pathArgs;
    const named = this.pathKwargs;
    let target = this.#url.replace(/\{(\w+)\}/g, (whole, key: string) => {
      const value = /^\d+$/.test(key) ? positional[Number(key)] : named[key];
      // Groups arrive percent-decoded; encode them again so a decoded "?" or "#" stays data.
      return value === undefined ? (/^\d+$/.test(key) || key in named ? "" : whole) : encodeURI(value).replace(/[?#]/g, encodeURIComponent);
    });
    // A substituted "/evil.com" after a leading "/" would leave the site ("//evil.com").
    target = target.replace(/^[/\\]{2,}/, "/");
    const query = this.request.query;
    if (query !== "") target += (target.includes("?") ? "&" : "?") + query;
    this.redirect(target, this.#permanent);
  }
}
