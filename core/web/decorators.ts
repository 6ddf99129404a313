/**
 * Tornado's handler decorators as standard TypeScript decorators: `@authenticated`,
 * `@addslash` and `@removeslash` on methods, `@streamRequestBody` on the class.
 */
import { HTTPError } from "../errors.ts";
import type { RequestHandler } from "./handler.ts";
import { userNowOrLater } from "./handler-io.ts";

/**
 * A handler method as a decorator sees it. The decorators keep the method's type, so an `async`
 * method stays one: when a decorator answers instead of calling the method (a redirect, a 403),
 * the call returns nothing, or a promise of nothing for an `async` method.
 */
export type Method<This, Args extends unknown[], R> = (this: This, ...args: Args) => R;

/**
 * The method needs a user: without one (`currentUser` is falsy) a GET or HEAD is redirected to
 * the `loginUrl` setting with `?next=<this URI>` (302), any other method gets 403. An async
 * `getCurrentUser()` is awaited first; a synchronous one keeps the method synchronous.
 *
 * @example
 * class AccountHandler extends RequestHandler {
 *   override getCurrentUser() { return this.getSignedCookie("user"); }
 *   @authenticated
 *   get(): void { this.write(`hello ${String(this.currentUser)}`); }
 * }
 */
export function authenticated<This extends RequestHandler, Args extends unknown[], R>(
  method: Method<This, Args, R>, _context: ClassMethodDecoratorContext<This, Method<This, Args, R>>,
): Method<This, Args, R> {
  return function (this: This, ...args: Args): R {
    const user = userNowOrLater(this);
    // The lifecycle awaits what a method returns, so a synchronous method may be answered later.
    if (isThenable(user)) return Promise.resolve(user).then((resolved) => guarded(this, resolved, method, args)) as R;
    return guarded(this, user, method, args);
  };
}

// Runs the method for a user, else redirects to the login page (GET/HEAD) or answers 403.
function guarded<This extends RequestHandler, Args extends unknown[], R>(handler: This, user: unknown, method: Method<This, Args, R>, args: Args): R {
  if (!user) {
    const verb = handler.request.method;
    if (verb !== "GET" && verb !== "HEAD") throw new HTTPError(403);
    let url = handler.getLoginUrl();
    if (!url.includes("?")) {
      // Tornado: an absolute login URL (another host) gets the full URL back, else the URI.
      const request = handler.request;
      const next = /^[a-z][a-z0-9+.-]*:/i.test(url) ? `${request.protocol}://${request.host}${request.uri}` : request.uri;
      url += `?next=${quotePlus(next)}`;
    }
    handler.redirect(url);
    return answered(method);
  }
  return method.apply(handler, args);
}

const AsyncFunction = (async () => {}).constructor;

/** What a method returns when its decorator answered instead: nothing, as a promise for an `async` method. */
function answered<R>(method: (...args: never[]) => unknown): R {
  return (method instanceof AsyncFunction ? Promise.resolve(undefined) : undefined) as R;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}

/**
 * Redirects GET/HEAD of a path with a trailing slash to the path without it (301, query kept);
 * other methods get 404.
 */
export function removeslash<This extends RequestHandler, Args extends unknown[], R>(
  method: Method<This, Args, R>, _context: ClassMethodDecoratorContext<This, Method<This, Args, R>>,
): Method<This, Args, R> {
  return function (this: This, ...args: Args): R {
    const path = this.request.path;
    if (path.endsWith("/")) {
      const verb = this.request.method;
      if (verb !== "GET" && verb !== "HEAD") throw new HTTPError(404);
      const trimmed = path.replace(/\/+$/, "");
      // "/" is not redirected to "" (Tornado); "//evil.com/" must not become "//evil.com".
      if (trimmed !== "") {
        this.redirect(withQuery(trimmed.replace(/^\/{2,}/, "/"), this.request.query), true);
        return answered(method);
      }
    }
    return method.apply(this, args);
  };
}

/**
 * Redirects GET/HEAD of a path without a trailing slash to the path with it (301, query kept);
 * other methods get 404.
 */
export function addslash<This extends RequestHandler, Args extends unknown[], R>(
  method: Method<This, Args, R>, _context: ClassMethodDecoratorContext<This, Method<This, Args, R>>,
): Method<This, Args, R> {
  return function (this: This, ...args: Args): R {
    const path = this.request.path;
    if (!path.endsWith("/")) {
      const verb = this.request.method;
      if (verb !== "GET" && verb !== "HEAD") throw new HTTPError(404);
      this.redirect(withQuery(`${path.replace(/^\/{2,}/, "/")}/`, this.request.query), true);
      return answered(method);
    }
    return method.apply(this, args);
  };
}

/**
 * The class streams its request body: `prepare()` runs as soon as the headers arrive, then
 * `dataReceived(chunk)` once per chunk (awaited: the next chunk is read only after), then the
 * method. A response finished in `prepare()` (a 401) is sent without reading the body.
 * Same as `static streamRequestBody = true`.
 *
 * @example
 * @streamRequestBody
 * class UploadHandler extends RequestHandler {
 *   override async dataReceived(chunk: Buffer): Promise<void> { await file.write(chunk); }
 *   put(): void { this.write("stored"); }
 * }
 */
export function streamRequestBody<C extends typeof RequestHandler>(cls: C, _context: ClassDecoratorContext<C>): C {
  cls.streamRequestBody = true;
  return cls;
}

function withQuery(path: string, query: string): string {
  return query === "" ? path : `${path}?${query}`;
}

// Python's urllib.parse.quote_plus, which Tornado's urlencode uses: only A-Z a-z 0-9 _ . - ~
// stay as they are, and a space is "+".
function quotePlus(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+");
}
