/**
 * The input side of a handler, as the base of `RequestHandler`: arguments, the JSON body,
 * cookies and Tornado-compatible signed cookies, XSRF protection, and the current user.
 */
import { ErrorCode, HTTPError, MissingArgumentError, TyphoonError } from "../errors.ts";
import { serializeCookie, type CookieOptions } from "../http/cookies.ts";
import { createSignedValue, createXsrfToken, decodeSignedValue, decodeXsrfToken, xsrfTokensMatch, type SecretSpec } from "../http/signing.ts";
import { escapeHtml } from "../http/error-page.ts";
import { mediaType } from "../http/headers.ts";
import { decodeUtf8, parseArgumentBytes } from "../http/percent.ts";
import { requestJson, type HTTPServerRequest } from "./request.ts";
import type { ApplicationView, HandlerSettings } from "./settings.ts";

// Tornado's _remove_control_chars_regex: controls other than \t\n\r are removed from arguments.
const CONTROL_CHARS = /[\x00-\x08\x0e-\x1f]/g;

const UNSET: unique symbol = Symbol("unset");

/** Where an argument is looked up. */
type ArgumentSource = "all" | "query" | "body";

/** Raw argument values for a `decodeArgument` hook: bytes, or text a JSON/multipart body already holds. */
type RawArguments = Record<string, (Buffer | string)[]>;

/** Internal (`@authenticated`): the current user now, or a promise of it when the hook is async. */
export let userNowOrLater: (handler: HandlerIO) => unknown;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}

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
  #pendingUser: Promise<unknown> | null = null;
  #xsrfToken: string | null = null;
  #rawQuery: RawArguments | null = null;
  #rawBody: RawArguments | null = null;

  static {
    userNowOrLater = (handler) => handler.#userNowOrLater();
  }

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
    return lastOf(this.#values("all", name), name, rest);
  }

  /** Every value of argument `name` (query and body). */
  getArguments(name: string): string[] {
    return valuesOf(this.#values("all", name));
  }

  /** The last value of a query argument; missing with no default → 400. */
  getQueryArgument(name: string): string;
  getQueryArgument<D>(name: string, defaultValue: D): string | D;
  getQueryArgument(name: string, ...rest: unknown[]): unknown {
    return lastOf(this.#values("query", name), name, rest);
  }

  /** Every value of a query argument. */
  getQueryArguments(name: string): string[] {
    return valuesOf(this.#values("query", name));
  }

  /** The last value of a body argument; missing with no default → 400. */
  getBodyArgument(name: string): string;
  getBodyArgument<D>(name: string, defaultValue: D): string | D;
  getBodyArgument(name: string, ...rest: unknown[]): unknown {
    return lastOf(this.#values("body", name), name, rest);
  }

  /** Every value of a body argument. */
  getBodyArguments(name: string): string[] {
    return valuesOf(this.#values("body", name));
  }

  /**
   * Hook: decodes a path group, query or body argument (Tornado's `decode_argument`). `value`
   * is the percent-decoded bytes (or, for a JSON or multipart body, its text); `name` is the
   * argument's or named group's name. The default is UTF-8, invalid → 400. Overriding it (for
   * a legacy charset) makes typhoon hand the hook raw bytes; otherwise arguments take a faster
   * path with the same result.
   */
  decodeArgument(value: Buffer | string, name?: string): string {
    return typeof value === "string" ? value : decodeUtf8(value, name === undefined ? "a path argument" : `argument ${JSON.stringify(name)}`);
  }

  // The values of `name`: as parsed (UTF-8), or through the app's own decodeArgument.
  #values(source: ArgumentSource, name: string): string[] | undefined {
    if (this.decodeArgument === HandlerIO.prototype.decodeArgument) {
      const request = this.request;
      return (source === "all" ? request.arguments : source === "query" ? request.queryArguments : request.bodyArguments)[name];
    }
    const query = source === "body" ? undefined : (this.#rawQuery ??= parseArgumentBytes(this.request.query))[name];
    const body = source === "query" ? undefined : (this.#rawBody ??= this.#rawBodyArguments())[name];
    const raw = query === undefined ? body : body === undefined ? query : [...query, ...body];
    return raw?.map((value) => this.decodeArgument(value, name));
  }

  #rawBodyArguments(): RawArguments {
    const type = mediaType(this.request.headers["content-type"] ?? "");
    if (type === "application/x-www-form-urlencoded") return parseArgumentBytes(this.request.body.toString("latin1"));
    return this.request.bodyArguments;
  }

  /** The body parsed as JSON; invalid JSON → 400. The type is the caller's claim, not checked. */
  getJsonBody<T = unknown>(): T {
    return requestJson(this.request) as T;
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

  /** Deletes every cookie the request sent (Tornado's `clear_all_cookies`); same options as `clearCookie`. */
  clearAllCookies(options: Pick<CookieOptions, "path" | "domain" | "secure" | "sameSite" | "httpOnly"> = {}): void {
    for (const name of Object.keys(this.request.cookies)) this.clearCookie(name, options);
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
   * The XSRF token for this client (Tornado's version-2 masked token); sets the XSRF cookie
   * (`xsrfCookieName`, default `_xsrf`, with `xsrfCookieOptions`) when the client has none.
   */
  get xsrfToken(): string {
    if (this.#xsrfToken === null) {
      const name = this.settings.xsrfCookieName ?? "_xsrf";
      const cookie = decodeXsrfToken(this.getCookie(name));
      const fresh = createXsrfToken(cookie?.raw, cookie?.timestamp);
      if (cookie === null) this.setCookie(name, fresh.token, this.settings.xsrfCookieOptions ?? {});
      this.#xsrfToken = fresh.token;
    }
    return this.#xsrfToken;
  }

  /** A hidden form field carrying the XSRF token. */
  xsrfFormHtml(): string {
    return `<input type="hidden" name="_xsrf" value="${escapeHtml(this.xsrfToken)}"/>`;
  }

  /**
   * Checks the `_xsrf` argument or `X-XSRFToken`/`X-CSRFToken` header against the XSRF cookie
   * (`xsrfCookieName`; the argument keeps its name); 403 if not.
   */
  checkXsrfCookie(): void {
    const headers = this.request.headers;
    const given = this.getArgument("_xsrf", null) ?? header(headers["x-xsrftoken"]) ?? header(headers["x-csrftoken"]);
    if (given === undefined || given === null) throw new HTTPError(403, "'_xsrf' argument missing from POST");
    const token = decodeXsrfToken(given);
    const cookie = decodeXsrfToken(this.getCookie(this.settings.xsrfCookieName ?? "_xsrf"));
    if (token === null) throw new HTTPError(403, "'_xsrf' argument has invalid format");
    if (cookie === null) throw new HTTPError(403, "'_xsrf' argument missing from cookie");
    if (!xsrfTokensMatch(token.raw, cookie.raw)) throw new HTTPError(403, "XSRF cookie does not match POST argument");
  }

  // ---- Users --------------------------------------------------------------------------------

  /**
   * Hook: the authenticated user, or `null`. Called lazily, on the first read of
   * `currentUser` (as in Tornado), and not at all when `prepare()` assigns `currentUser`. May
   * be async: then `await this.resolveCurrentUser()` first (`@authenticated` does).
   */
  getCurrentUser(): unknown {
    return null;
  }

  /**
   * The current user (from `getCurrentUser()`, run on first read), or `null`. Assignable.
   * Reading it while an async `getCurrentUser()` is unresolved throws `E_CURRENT_USER_ASYNC`.
   */
  get currentUser(): unknown {
    if (this.#currentUser === UNSET && isThenable(this.#userNowOrLater())) {
      throw new TyphoonError(ErrorCode.CURRENT_USER_ASYNC, "getCurrentUser() is async: await this.resolveCurrentUser() before reading currentUser");
    }
    return this.#currentUser;
  }

  set currentUser(user: unknown) {
    this.#currentUser = user ?? null;
  }

  /**
   * Runs `getCurrentUser()` if it has not run, awaits it, and resolves to the user (also
   * `currentUser` from then on). The hook runs once however often this is called.
   *
   * @example
   * override async prepare(): Promise<void> {
   *   const user = await this.resolveCurrentUser();
   *   if (user === null) throw new HTTPError(401);
   * }
   */
  resolveCurrentUser(): Promise<unknown> {
    const user = this.#userNowOrLater();
    return Promise.resolve(user);
  }

  #userNowOrLater(): unknown {
    if (this.#currentUser !== UNSET) return this.#currentUser;
    if (this.#pendingUser !== null) return this.#pendingUser;
    const user = this.getCurrentUser();
    if (!isThenable(user)) {
      this.#currentUser = user ?? null;
      return this.#currentUser;
    }
    const pending = Promise.resolve(user).then((resolved) => {
      // prepare() may have assigned currentUser meanwhile: that assignment wins.
      if (this.#currentUser === UNSET) this.#currentUser = resolved ?? null;
      return this.#currentUser;
    });
    // Whoever awaits it sees a rejection; a getter that only threw must not leave it unhandled.
    pending.then(undefined, () => undefined);
    this.#pendingUser = pending;
    return pending;
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

function lastOf(values: string[] | undefined, name: string, rest: unknown[]): unknown {
  if (values === undefined || values.length === 0) {
    if (rest.length === 0) throw new MissingArgumentError(name);
    return rest[0];
  }
  return clean(values[values.length - 1]!);
}

function valuesOf(values: string[] | undefined): string[] {
  return (values ?? []).map(clean);
}
