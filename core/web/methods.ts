/**
 * Which HTTP methods a handler answers: the lifecycle's method check (405 with `Allow`), HEAD
 * through `get()` when there is no `head()`, and the default answer to OPTIONS.
 */
import { HTTPError } from "../errors.ts";

/** What the method check needs of a handler: its class's `supportedMethods` and its methods. */
interface MethodTarget {
  readonly constructor: Function;
}

/** What the default OPTIONS answer needs of a handler. */
interface OptionsTarget extends MethodTarget {
  setStatus(status: number): unknown;
  setHeader(name: string, value: string): unknown;
  finish(): unknown;
}

function supportedMethodsOf(handler: MethodTarget): readonly string[] {
  return (handler.constructor as unknown as { supportedMethods: readonly string[] }).supportedMethods;
}

/** The HTTP methods a handler may implement. */
export type HTTPMethod = "GET" | "HEAD" | "POST" | "DELETE" | "PATCH" | "PUT" | "OPTIONS";

/** Methods that never need an XSRF token. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/** A lifecycle hook or method, as declared by a subclass (its parameters are its own). */
export type Hook = (...args: never[]) => unknown;

/**
 * The lifecycle's first method check: a method outside the class's `supportedMethods` → 405,
 * before the body is read (Tornado's `_execute`).
 */
export function checkSupported(handler: MethodTarget, method: string): void {
  if (!supportedMethodsOf(handler).includes(method)) throw new HTTPError(405);
}

/**
 * The function that answers a supported `method` on `handler`: its own method, `get()` for
 * HEAD, or the default OPTIONS answer. Not implemented → 405; the lifecycle asks only after
 * `prepare()`, so a `prepare()` that finishes or raises wins (Tornado's custom-404 pattern).
 */
export function methodFunction(handler: MethodTarget, method: string): Hook {
  const self = handler as unknown as Record<string, Hook | undefined>;
  let fn = self[method.toLowerCase()];
  if (typeof fn !== "function" && method === "HEAD") fn = self["get"];
  if (typeof fn === "function") return fn;
  if (method === "OPTIONS") return defaultOptions;
  throw new HTTPError(405);
}

function defaultOptions(this: OptionsTarget): void {
  this.setStatus(204);
  this.setHeader("Allow", allowedMethods(this).join(", "));
  this.finish();
}

const allowCache = new WeakMap<object, string[]>();

/** The methods a handler class implements (HEAD with GET, OPTIONS always), for `Allow`. */
export function allowedMethods(handler: MethodTarget): string[] {
  const cls = handler.constructor;
  let allowed = allowCache.get(cls);
  if (allowed === undefined) {
    const proto = cls.prototype as Record<string, unknown>;
    allowed = supportedMethodsOf(handler).filter((m) => {
      if (typeof proto[m.toLowerCase()] === "function") return true;
      return (m === "HEAD" && typeof proto["get"] === "function") || m === "OPTIONS";
    });
    allowCache.set(cls, allowed);
  }
  return allowed;
}
