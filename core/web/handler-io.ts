/**
 * The input side of a handler, as the base of `RequestHandler`: arguments, the JSON body,
 * cookies and Tornado-compatible signed cookies, XSRF protection, and the current user.
 */
import { ErrorCode, HTTPError, MissingArgumentError, TyphoonError } from "../errors.ts";
import { parseJson } from "../http/body.ts";
import { serializeCookie, type CookieOptions } from "../http/cookies.ts";
import { createSignedValue, createXsrfToken, decodeSignedValue, decodeXsrfToken, xsrfTokensMatch, type SecretSpec } from "../http/signing.ts";
import { escapeHtml } from "../http/error-page.ts";
import type { ArgumentMap } from "../http/body.ts";
import type { HTTPServerRequest } from "./request.ts";
import type { ApplicationView, HandlerSettings } from "./settings.ts";

// Tornado's _remove_control_chars_regex: controls other than \t\n\r are removed from arguments.
const CONTROL_CHARS = /[\x00-\x08\x0e-\x1f]/g;

const UNSET: unique symbol = Symbol("unset");

/** What {@link HandlerIO.newCookieHeaders} returns when no cookie was set: no new list per request. */
const NO_COOKIES: string[] = Object.freeze([]) as unknown as string[];

/** Options of `setSignedCookie`. */
export interface SignedCookieOptions extends CookieOptions {
  /** Default 30 days. */
  expiresDays?: number;
}

/** Options of `getSignedCookie`. */
export interface GetSignedCookieOptions {
  /** Signatures older than this are rejected (default 31). */
  maxAgeDays?: number;
  /** Oldest signed-value format accepted. */
  minVersion?: 1 | 2;
}

/** The input half of a request handler. Not used on its own: extend `RequestHandler`. */
export abstract class HandlerIO {
  /** The application this handler serves. */
  readonly application: ApplicationView;
  /** The request being handled. */
  readonly request: HTTPServerRequest;
  #newCookies: Map<string, string> | null = null;
  #currentUser: unknown = UNSET;
  #xsrfToken: string | null = null;

  constructor(application: ApplicationView, request: HTTPServerRequest) {
    this.application = application;
    this.request = request;
  }

  /** The application's settings. */
  get settings(): HandlerSettings {
    return this.application.settings;
  }

  /** The path of a named rule (see `Application.reverseUrl`). */
  reverseUrl(name: string, ...args: unknown[]): string {
    return this.application.reverseUrl(name, ...args);
  }

  // ---- Arguments ----------------------------------------------------------------------------

  /** The last value of argument `name` (query and body); missing with no default → 400. */
  getArgument(name: string): string;
  getArgument<D>(name: string, defaultValue: D): string | D;
  getArgument(name: string, ...rest: unknown[]): unknown {
    return lastOf(this.request.arguments, name, rest);
  }

  /** Every value of argument `name` (query and body). */
  getArguments(name: string): string[] {
    return valuesOf(this.request.arguments, name);
  }

  /** The last value of a query argument; missing with no default → 400. */
  getQueryArgument(name: string): string;
  getQueryArgument<D>(name: string, defaultValue: D): string | D;
  getQueryArgument(name: string, ...rest: unknown[]): unknown {
    return lastOf(this.request.queryArguments, name, rest);
  }

  /** Every value of a query argument. */
  getQueryArguments(name: string): string[] {
    return valuesOf(this.request.queryArguments, name);
  }

  /** The last value of a body argument; missing with no default → 400. */
  getBodyArgument(name: string): string;
  getBodyArgument<D>(name: string, defaultValue: D): string | D;
  getBodyArgument(name: string, ...rest: unknown[]): unknown {
    return lastOf(this.request.bodyArguments, name, rest);
  }

  /** Every value of a body argument. */
  getBodyArguments(name: string): string[] {
    return valuesOf(this.request.bodyArguments, name);
  }

  /** The body parsed as JSON; invalid JSON → 400. The type is the caller's claim, not checked. */
  getJsonBody<T = unknown>(): T {
    return parseJson(this.request.body) as T;
  }

  // ---- Cookies ------------------------------------------------------------------------------

  /** A cookie sent by the client, or `defaultValue`. */
  getCookie(name: string, defaultValue?: string): string | undefined {
    return this.request.cookies[name] ?? defaultValue;
  }

  /** Sets a cookie on the response. Invalid names or values throw `E_INVALID_COOKIE`. */
  setCookie(name: string, value: string, options: CookieOptions = {}): void {
    (this.#newCookies ??= new Map()).set(name, serializeCookie(name, value, options));
  }

  /** Deletes a cookie on the client (same `path`/`domain` as when it was set). */
  clearCookie(name: string, options: Pick<CookieOptions, "path" | "domain" | "secure" | "sameSite" | "httpOnly"> = {}): void {
    this.setCookie(name, "", { ...options, expires: Date.now() - 365 * 86_400_000, maxAge: 0 });
  }

  /** Signs and timestamps a cookie (Tornado's signed-value format 2). Needs `cookieSecret`. */
  setSignedCookie(name: string, value: string | Buffer, options: SignedCookieOptions = {}): void {
    const { expiresDays = 30, ...rest } = options;
    const keyVersion = this.settings.keyVersion;
    const signed = createSignedValue(this.#secret(), name, value, keyVersion === undefined ? {} : { keyVersion });
    this.setCookie(name, signed, { ...rest, expiresDays });
  }

  /** A signed cookie's value if its signature, name and age check out, else `null`. */
  getSignedCookie(name: string, options: GetSignedCookieOptions = {}): string | null {
    const value = decodeSignedValue(this.#secret(), name, this.getCookie(name), {
      maxAgeDays: options.maxAgeDays ?? 31,
      ...(options.minVersion === undefined ? {} : { minVersion: options.minVersion }),
    });
    return value === null ? null : value.toString("utf8");
  }

  /** The `Set-Cookie` header values set so far (used when the headers are written). */
  protected newCookieHeaders(): string[] {
    return this.#newCookies === null ? NO_COOKIES : [...this.#newCookies.values()];
  }

  #secret(): SecretSpec {
    const secret = this.settings.cookieSecret;
    if (secret === undefined) throw new TyphoonError(ErrorCode.COOKIE_SECRET, "Set the cookieSecret setting to use signed cookies");
    return secret;
  }

  // ---- XSRF ---------------------------------------------------------------------------------

  /**
   * The XSRF token for this client (Tornado's version-2 masked token); sets the `_xsrf` cookie
   * when the client has none.
   */
  get xsrfToken(): string {
    if (this.#xsrfToken === null) {
      const cookie = decodeXsrfToken(this.getCookie("_xsrf"));
      const fresh = createXsrfToken(cookie?.raw, cookie?.timestamp);
      if (cookie === null) this.setCookie("_xsrf", fresh.token, this.settings.xsrfCookieOptions ?? {});
      this.#xsrfToken = fresh.token;
    }
    return this.#xsrfToken;
  }

  /** A hidden form field carrying the XSRF token. */
  xsrfFormHtml(): string {
    return `<input type="hidden" name="_xsrf" value="${escapeHtml(this.xsrfToken)}"/>`;
  }

  /** Checks the `_xsrf` argument or `X-XSRFToken`/`X-CSRFToken` header against the cookie; 403 if not. */
  checkXsrfCookie(): void {
    const headers = this.request.headers;
    const given = this.getArgument("_xsrf", null) ?? header(headers["x-xsrftoken"]) ?? header(headers["x-csrftoken"]);
    if (given === undefined || given === null) throw new HTTPError(403, "'_xsrf' argument missing from POST");
    const token = decodeXsrfToken(given);
    const cookie = decodeXsrfToken(this.getCookie("_xsrf"));
    if (token === null) throw new HTTPError(403, "'_xsrf' argument has invalid format");
    if (cookie === null) throw new HTTPError(403, "'_xsrf' argument missing from cookie");
    if (!xsrfTokensMatch(token.raw, cookie.raw)) throw new HTTPError(403, "XSRF cookie does not match POST argument");
  }

  // ---- Users --------------------------------------------------------------------------------

  /**
   * Hook: the authenticated user, or `null`. May be async; typhoon resolves it before
   * `prepare()` and stores it in `currentUser`.
   */
  getCurrentUser(): unknown {
    return null;
  }

  /** The current user (from `getCurrentUser()`), or `null`. Assignable. */
  get currentUser(): unknown {
    if (this.#currentUser === UNSET) {
      const user = this.getCurrentUser();
      if (user instanceof Promise) {
        throw new TyphoonError(ErrorCode.CURRENT_USER_ASYNC, "getCurrentUser() is async: read currentUser from prepare() or later");
      }
      this.#currentUser = user ?? null;
    }
    return this.#currentUser;
  }

  set currentUser(user: unknown) {
    this.#currentUser = user ?? null;
  }

  /** Where `@authenticated` sends anonymous users: the `loginUrl` setting. */
  getLoginUrl(): string {
    const url = this.settings.loginUrl;
    if (url === undefined) throw new TyphoonError(ErrorCode.SETTING_MISSING, "Set the loginUrl setting to use @authenticated");
    return url;
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[value.length - 1] : value;
}

function clean(value: string): string {
  return value.replace(CONTROL_CHARS, "").trim();
}

function lastOf(args: ArgumentMap, name: string, rest: unknown[]): unknown {
  const values = args[name];
  if (values === undefined || values.length === 0) {
    if (rest.length === 0) throw new MissingArgumentError(name);
    return rest[0];
  }
  return clean(values[values.length - 1]!);
}

function valuesOf(args: ArgumentMap, name: string): string[] {
  return (args[name] ?? []).map(clean);
}
