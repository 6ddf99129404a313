/**
 * Cookie headers the way Tornado reads and writes them.
 *
 * Parsing is Tornado's `request.cookies`: `httputil.parse_cookie` (Django's browser-like split
 * on `;`, last duplicate wins, Python's unquoting) followed by the key filter of Python's
 * `SimpleCookie`. Serializing is Tornado's `set_cookie` through `http.cookies.Morsel`, so a
 * value needing quotes is quoted and octal-escaped exactly as Python does, and attributes come
 * in Morsel's order. Nothing that reaches a `Set-Cookie` header can split it.
 */
import { ErrorCode, TyphoonError } from "../errors.ts";

/** Options of {@link serializeCookie}, Tornado's `set_cookie` keyword arguments. */
export interface CookieOptions {
  domain?: string;
  /** A `Date`, milliseconds since the epoch, or a preformatted HTTP date. Wins over `expiresDays`. */
  expires?: Date | number | string;
  /** Default `/`; an empty string leaves the attribute out. */
  path?: string;
  /** Expire this many days from now (Tornado's `expires_days`). */
  expiresDays?: number;
  /** `Max-Age` in seconds (an integer). */
  maxAge?: number;
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: "Strict" | "Lax" | "None" | "strict" | "lax" | "none";
}

/** Python's `http.cookies._LegalChars`: what a cookie name may contain. */
const LEGAL_KEY = /^[A-Za-z0-9!#$%&'*+\-.^_`|~:]+$/;
/** Morsel's reserved attribute names: Python refuses them as cookie names. */
const RESERVED = new Set(["expires", "path", "comment", "domain", "max-age", "secure", "httponly", "version", "samesite"]);
/** Characters Python's `_quote` leaves unescaped inside quotes. */
const UNESCAPED = /[A-Za-z0-9!#$%&'*+\-.^_`|~: ()/<=>?@[\]{}]/;
/** Python's `str.strip()` whitespace. */
const PY_SPACE = "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";
/** Python's `_unquote_sub`: `\ooo` (first digit 0-3) or a backslash before any char but `\n`. */
const UNQUOTE = /\\(?:([0-3][0-7][0-7])|([^\n]))/g;
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const SAME_SITE = new Set(["Strict", "Lax", "None", "strict", "lax", "none"]);

/**
 * Parses a `Cookie` header into a null-prototype object of name → value, as Tornado's
 * `request.cookies` sees it: quoted values are unquoted, the last of two same-named cookies
 * wins, and names Python's `SimpleCookie` refuses (empty, with spaces or other non-token
 * characters, or an attribute name such as `Path`) are dropped. Never throws.
 *
 * @example
 * parseCookies('a=1; b="x\\073y"; a=2') // { a: "2", b: "x;y" }
 */
export function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = Object.create(null) as Record<string, string>;
  if (typeof header !== "string" || header === "") return cookies;
  for (const chunk of header.split(";")) {
    const eq = chunk.indexOf("=");
    // A chunk without "=" is a value with an empty name (Mozilla bug 169091), which
    // SimpleCookie then refuses.
    const name = pyStrip(eq < 0 ? "" : chunk.slice(0, eq));
    const value = pyStrip(eq < 0 ? chunk : chunk.slice(eq + 1));
    if (!isCookieName(name)) continue;
    cookies[name] = unquote(value);
  }
  return cookies;
}

/**
 * One `Set-Cookie` header value, as Tornado's `set_cookie` writes it.
 *
 * Throws `TyphoonError` with `E_INVALID_COOKIE` when the name or value contains a control
 * character or whitespace (Tornado: `[\x00-\x20]` in name + value), when the name is not a
 * token or is an attribute name, when the value has characters outside Latin-1 (they cannot be
 * sent in a header), or when an option would break the header. A value with other special
 * characters (`;`, `,`, `"`, `\`, Latin-1) is quoted with Python's octal escapes.
 *
 * @example
 * serializeCookie("session", "abc", { httpOnly: true, maxAge: 3600 })
 * // "session=abc; HttpOnly; Max-Age=3600; Path=/"
 * serializeCookie("q", "a;b") // 'q="a\\073b"; Path=/'
 */
export function serializeCookie(name: string, value: string, options: CookieOptions = {}): string {
  if (/[\x00-\x20]/.test(name + value)) invalid(`cookie ${JSON.stringify(name)} has a control character or whitespace`);
  if (!isCookieName(name)) invalid(`${JSON.stringify(name)} is not a valid cookie name`);
  if (/[^\x00-\xff]/.test(value)) invalid(`cookie ${name} has a value with characters outside Latin-1`);
  const parts = [`${name}=${quote(value)}`];
  // Morsel writes attributes sorted by key: domain, expires, httponly, max-age, path, samesite, secure.
  if (options.domain) parts.push(`Domain=${attribute("domain", options.domain)}`);
  const expires = expiresAttribute(options);
  if (expires !== null) parts.push(`expires=${expires}`);
  if (options.httpOnly) parts.push("HttpOnly");
  if (options.maxAge !== undefined) {
    if (!Number.isSafeInteger(options.maxAge)) invalid(`maxAge must be an integer number of seconds, got ${options.maxAge}`);
    parts.push(`Max-Age=${options.maxAge}`);
  }
  const path = options.path ?? "/";
  if (path) parts.push(`Path=${attribute("path", path)}`);
  if (options.sameSite) {
    if (!SAME_SITE.has(options.sameSite)) invalid(`sameSite must be Strict, Lax or None, got ${JSON.stringify(options.sameSite)}`);
    parts.push(`SameSite=${options.sameSite}`);
  }
  if (options.secure) parts.push("Secure");
  const header = parts.join("; ");
  // Tornado refuses header values over 4000 bytes (and browsers drop cookies near 4096).
  if (header.length > 4000) invalid(`Set-Cookie for ${name} is ${header.length} bytes, over the 4000-byte limit`);
  return header;
}

/** An HTTP date (RFC 7231 IMF-fixdate), as Python's `email.utils.formatdate(usegmt=True)`. */
export function formatHttpDate(date: Date): string {
  const year = date.getUTCFullYear();
  if (Number.isNaN(date.getTime()) || year < 0 || year > 9999) invalid(`cannot format ${String(date)} as an HTTP date`);
  const two = (n: number): string => String(n).padStart(2, "0");
  return `${DAYS[date.getUTCDay()]}, ${two(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${String(year).padStart(4, "0")} `
    + `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} GMT`;
}

function expiresAttribute(options: CookieOptions): string | null {
  const { expires, expiresDays } = options;
  if (expires === undefined || expires === "") {
    if (expiresDays === undefined) return null;
    if (!Number.isFinite(expiresDays)) invalid(`expiresDays must be a finite number, got ${expiresDays}`);
    return formatHttpDate(new Date(Date.now() + expiresDays * 86_400_000));
  }
  if (typeof expires === "string") return attribute("expires", expires);
  return formatHttpDate(typeof expires === "number" ? new Date(expires) : expires);
}

/** Attribute values are written raw, so they must not end the attribute or the header. */
function attribute(label: string, value: string): string {
  if (/[\x00-\x1f\x7f;]|[^\x00-\xff]/.test(value)) invalid(`cookie ${label} ${JSON.stringify(value)} has a control character, ';' or a non-Latin-1 character`);
  return value;
}

function isCookieName(name: string): boolean {
  return LEGAL_KEY.test(name) && !RESERVED.has(name.toLowerCase());
}

/** Python's `http.cookies._quote`. */
function quote(value: string): string {
  if (LEGAL_KEY.test(value)) return value;
  let out = '"';
  for (const ch of value) {
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (UNESCAPED.test(ch)) out += ch;
    else out += `\\${ch.charCodeAt(0).toString(8).padStart(3, "0")}`;
  }
  return `${out}"`;
}

/** Python's `http.cookies._unquote`: only a value wrapped in double quotes is unescaped. */
function unquote(value: string): string {
  if (value.length < 2 || !value.startsWith('"') || !value.endsWith('"')) return value;
  return value.slice(1, -1).replace(UNQUOTE, (_match: string, octal: string | undefined, char: string) =>
    octal ? String.fromCharCode(parseInt(octal, 8)) : char);
}

function pyStrip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && PY_SPACE.includes(text.charAt(start))) start++;
  while (end > start && PY_SPACE.includes(text.charAt(end - 1))) end--;
  return text.slice(start, end);
}

function invalid(message: string): never {
  throw new TyphoonError(ErrorCode.INVALID_COOKIE, message);
}
