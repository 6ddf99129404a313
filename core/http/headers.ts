/**
 * Response headers and bodies as a handler buffers them: the types, header validation (RFC 9110
 * §5.5, refused where a header is set, never when the head is written), bodyless statuses,
 * lengths and joining of buffered chunks, and the media type of a `Content-Type` (requests' too).
 * Pure: nothing here writes to a socket.
 */
import { STATUS_CODES } from "node:http";
import { ErrorCode, TyphoonError } from "../errors.ts";

/** Response headers, by lower-cased name. */
export type HeaderMap = Record<string, string | string[]>;

/**
 * The objects {@link newHeaderMap} makes: their prototype holds nothing (no `__proto__` setter,
 * no `constructor`, nothing inherited to enumerate), as with `Object.create(null)`, but unlike
 * an `Object.create(null)` object they stay in V8's fast mode, so setting the usual few headers
 * and node's `for...in` over them when the head is written cost a third as much (measured).
 */
class HeaderFields {}
Reflect.deleteProperty(HeaderFields.prototype, "constructor");
Object.setPrototypeOf(HeaderFields.prototype, null);

/** A new, empty header map (see {@link HeaderFields}). */
export function newHeaderMap(): HeaderMap {
  return new HeaderFields() as HeaderMap;
}

/** A body as buffered by a handler. */
export type Body = string | Buffer;

// RFC 9110 §5.5: a field value is visible characters, spaces and tabs; CR, LF, NUL and the other
// controls are how header injection starts, so they are refused where the header is set. So is
// anything past U+00FF: node refuses it only when the head is written, too late for a 500.
const INVALID_VALUE = /[\x00-\x08\x0a-\x1f\x7f\u0100-\uffff]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Checks a header name and value, returning the value as a string. Throws `E_INVALID_HEADER`. */
export function checkHeader(name: string, value: unknown): string {
  if (!TOKEN.test(name)) throw new TyphoonError(ErrorCode.INVALID_HEADER, `Invalid header name ${JSON.stringify(name)}`);
  let text: string;
  if (typeof value === "string") text = value;
  else if (typeof value === "number") text = String(value);
  else if (value instanceof Date) text = value.toUTCString();
  else throw new TyphoonError(ErrorCode.INVALID_HEADER, `Header ${name} must be a string, number or Date`);
  if (INVALID_VALUE.test(text)) {
    throw new TyphoonError(ErrorCode.INVALID_HEADER, `Header ${name} contains a control character (CR, LF, NUL ...)`);
  }
  return text;
}

// RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text). "<" is refused as well, as
// Tornado does: a reason often comes from input and ends up in the error page.
const REASON = /^[\t\x20-\x3b\x3d-\x7e\x80-\xff]+$/;

/**
 * The reason phrase to send: a valid one as given; one a status line cannot carry (CR, LF,
 * controls, markup, empty) is replaced by `Unknown` rather than refused (never echoed, no
 * 500). Without one: `undefined` (node's phrase) for a known code, `Unknown` for another.
 */
export function reasonPhraseFor(status: number, reason?: string): string | undefined {
  if (reason === undefined) return STATUS_CODES[status] === undefined ? "Unknown" : undefined;
  return REASON.test(reason) ? reason : "Unknown";
}

/** Whether a status never carries a body (1xx, 204, 304). */
export function isBodyless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/** The byte length of a buffered body. */
export function bodyLength(body: Body): number {
  return typeof body === "string" ? Buffer.byteLength(body) : body.length;
}

/** Joins buffered chunks: one string when all are strings (the common case), else one Buffer. */
export function joinChunks(chunks: Body[]): Body {
  if (chunks.length === 0) return "";
  if (chunks.length === 1) return chunks[0]!;
  let allStrings = true;
  for (const c of chunks) if (typeof c !== "string") allStrings = false;
  if (allStrings) return (chunks as string[]).join("");
  return Buffer.concat(chunks.map((c) => (typeof c === "string" ? Buffer.from(c) : c)));
}

/** The lower-cased media type of a `Content-Type` (`application/json; charset=utf-8` → `application/json`). */
export function mediaType(contentType: string): string {
  const semicolon = contentType.indexOf(";");
  const type = semicolon === -1 ? contentType : contentType.slice(0, semicolon);
  // The common spelling needs no copy.
  return type === "application/json" ? type : type.trim().toLowerCase();
}
