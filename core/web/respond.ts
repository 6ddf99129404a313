/**
 * The one place that writes status, headers and body to the socket (Koa's `respond()`), and the
 * rules that belong with it: header validation, bodyless statuses, the default error page and
 * its content negotiation, ETags.
 */
import { createHash } from "node:crypto";
import * as crypto from "node:crypto";
import type { ServerResponse } from "node:http";
import { ErrorCode, TyphoonError, reasonPhrase } from "../errors.ts";

/** Response headers, by lower-cased name. */
export type HeaderMap = Record<string, string | string[]>;

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

/** Whether a status never carries a body (1xx, 204, 304). */
export function isBodyless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/** Writes the status line and headers; the body follows with `res.write`/`res.end`. */
export function sendHead(res: ServerResponse, status: number, reason: string | undefined, headers: HeaderMap): void {
  if (reason === undefined) res.writeHead(status, headers);
  else res.writeHead(status, reason, headers);
}

/** Writes a whole response. HEAD and bodyless statuses send no body (Node drops it for HEAD). */
export function sendWhole(res: ServerResponse, status: number, reason: string | undefined, headers: HeaderMap, body: Body | null): void {
  sendHead(res, status, reason, headers);
  if (body === null || isBodyless(status)) res.end();
  else res.end(body);
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

type OneShotHash = (algorithm: string, data: string | Buffer, encoding: "hex") => string;
// crypto.hash (Node ≥ 20.12) hashes a body in one call, without a Hash object.
const oneShot = (crypto as unknown as { hash?: OneShotHash }).hash;

/** Bodies up to this size are hashed in JS; SHA-1 costs more than the whole request below it. */
const SMALL_BODY = 4096;

/**
 * The default ETag: a quoted hash of the body and its length. An ETag only has to change when
 * the body does, so small bodies (the common case) take a 64-bit multiplicative hash computed in
 * JS — measured at a twentieth of a SHA-1 call for a short body, which was the largest single cost
 * of a hello-world request. Larger bodies take SHA-1, as Tornado does.
 */
export function etagOf(body: Body): string {
  const length = body.length;
  if (length > SMALL_BODY) {
    const hex = oneShot !== undefined ? oneShot("sha1", body, "hex") : createHash("sha1").update(body).digest("hex");
    return `"${hex}"`;
  }
  // Two 32-bit lanes with different odd multipliers, then a murmur-style finaliser on each.
  let a = 0x9e3779b9 ^ length;
  let b = 0x85ebca6b ^ length;
  if (typeof body === "string") {
    for (let i = 0; i < length; i++) {
      const c = body.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
  } else {
    for (let i = 0; i < length; i++) {
      const c = body[i]!;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
  }
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b) ^ Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b = Math.imul(b ^ (b >>> 16), 0x85ebca6b) ^ Math.imul(a ^ (a >>> 13), 0xc2b2ae35);
  // A byte table beats toString(16) + padStart by ~7× (measured), which matters at this scale.
  return '"' + length + "-" + HEX[a >>> 24] + HEX[(a >>> 16) & 255] + HEX[(a >>> 8) & 255] + HEX[a & 255]
    + HEX[b >>> 24] + HEX[(b >>> 16) & 255] + HEX[(b >>> 8) & 255] + HEX[b & 255] + '"';
}

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Whether `If-None-Match` matches `etag` (weak comparison, `*`, comma lists). RFC 9110 §13.1.2. */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  const target = etag.startsWith("W/") ? etag.slice(2) : etag;
  for (const raw of ifNoneMatch.split(",")) {
    const candidate = raw.trim();
    if (candidate === "*") return true;
    if ((candidate.startsWith("W/") ? candidate.slice(2) : candidate) === target) return true;
  }
  return false;
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}
const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** The quality an `Accept` header gives a media type (exact, `type/*`, `*\/*`); 0 when absent. */
function quality(accept: string, type: string): number {
  const [major] = type.split("/");
  let best = -1;
  let bestSpecificity = -1;
  for (const entry of accept.split(",")) {
    const [range, ...params] = entry.trim().toLowerCase().split(";");
    const specificity = range === type ? 2 : range === `${major}/*` ? 1 : range === "*/*" ? 0 : -1;
    if (specificity < bestSpecificity || specificity === -1) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split("=");
      if (k === "q" && v !== undefined) q = Number(v) || 0;
    }
    best = q;
    bestSpecificity = specificity;
  }
  return best < 0 ? 0 : best;
}

/** Whether an `Accept` header prefers JSON over HTML (ties go to HTML). */
export function prefersJson(accept: string | undefined): boolean {
  // Only JSON or a wildcard range (`application/*`, `*/*`) can rank JSON first.
  if (accept === undefined || (!accept.includes("json") && !accept.includes("/*"))) return false;
  return quality(accept, "application/json") > quality(accept, "text/html");
}

/** The default error page: HTML, or JSON when the client prefers it. */
export function errorPage(status: number, reason: string | undefined, accept: string | undefined, trace?: string): { body: string; contentType: string } {
  const phrase = reason ?? reasonPhrase(status);
  if (prefersJson(accept)) {
    const payload: Record<string, unknown> = { status, reason: phrase };
    if (trace !== undefined) payload["traceback"] = trace;
    return { body: JSON.stringify(payload), contentType: "application/json; charset=UTF-8" };
  }
  const title = escapeHtml(`${status}: ${phrase}`);
  const body = trace !== undefined ? `<pre>${escapeHtml(trace)}</pre>` : title;
  return { body: `<html><title>${title}</title><body>${body}</body></html>`, contentType: "text/html; charset=UTF-8" };
}

/**
 * Answers a request with an error page before any handler exists (no route, bad path, overload).
 */
export function sendErrorPage(res: ServerResponse, status: number, accept: string | undefined, extra?: HeaderMap, close = false): void {
  const page = errorPage(status, undefined, accept);
  const headers: HeaderMap = { ...extra, "content-type": page.contentType, "content-length": String(Buffer.byteLength(page.body)) };
  if (close) headers["connection"] = "close";
  sendWhole(res, status, undefined, headers, page.body);
}
