/**
 * Response compression (the `compressResponse` setting): which encoding a client gets, which
 * responses are worth compressing, and the two ways a body is compressed — whole on `finish()`,
 * or as a stream that is sync-flushed on every `flush()` so a streamed response reaches the
 * client as it is written. Tornado's `GZipContentEncoding`, with brotli added.
 */
import {
  brotliCompressSync, constants, createBrotliCompress, createGzip, gzipSync, type BrotliCompress, type Gzip,
} from "node:zlib";
import { mediaType, type Body, type HeaderMap } from "./headers.ts";

/** The encodings typhoon answers with. */
export type Encoding = "br" | "gzip";

/** Bodies shorter than this are sent as they are: compressing them costs more than it saves. */
export const MIN_COMPRESS_LENGTH = 1024;

// Tornado's GZipContentEncoding.CONTENT_TYPES, plus text/* and the +json/+xml suffixes.
const COMPRESSIBLE = new Set([
  "application/javascript", "application/x-javascript", "application/json", "application/xml",
  "application/xhtml+xml", "application/rss+xml", "application/atom+xml", "application/manifest+json",
  "application/wasm", "image/svg+xml",
]);

// Brotli's default quality (11) is meant for assets compressed once; 4 is what servers use
// for dynamic responses: about gzip's speed with a smaller result.
const BROTLI_OPTIONS = {
  params: { [constants.BROTLI_PARAM_QUALITY]: 4, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT },
};

/**
 * The encoding to answer with for an `Accept-Encoding` header, or `null` for none.
 * The highest q-value wins; on a tie brotli is chosen (smaller for the same work).
 */
export function chooseEncoding(acceptEncoding: string | string[] | undefined): Encoding | null {
  if (acceptEncoding === undefined) return null;
  const header = Array.isArray(acceptEncoding) ? acceptEncoding.join(",") : acceptEncoding;
  let gzip = 0;
  let br = 0;
  let star: number | null = null;
  for (const entry of header.split(",")) {
    const [coding = "", ...params] = entry.trim().toLowerCase().split(";");
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split("=");
      if (k === "q" && v !== undefined) q = Number(v) || 0;
    }
    const name = coding.trim();
    if (name === "gzip" || name === "x-gzip") gzip = Math.max(gzip, q);
    else if (name === "br") br = Math.max(br, q);
    else if (name === "*") star = q;
  }
  // RFC 9110 §12.5.3: "*" stands for any coding not listed by name.
  if (star !== null) {
    if (!/\bbr\b/i.test(header)) br = star;
    if (!/\b(x-)?gzip\b/i.test(header)) gzip = star;
  }
  if (br > 0 && br >= gzip) return "br";
  return gzip > 0 ? "gzip" : null;
}

/** Whether a `Content-Type` is worth compressing (text, JSON, JavaScript, XML, SVG ...). */
export function isCompressible(contentType: string | string[] | undefined): boolean {
  if (typeof contentType !== "string") return false;
  const type = mediaType(contentType);
  return type.startsWith("text/") || COMPRESSIBLE.has(type) || type.endsWith("+json") || type.endsWith("+xml");
}

/** Adds `Accept-Encoding` to the response's `Vary` header unless it is there already. */
export function addVaryAcceptEncoding(headers: HeaderMap): void {
  const current = headers["vary"];
  const values = current === undefined ? [] : Array.isArray(current) ? current : [current];
  if (values.some((v) => /(^|,)\s*(accept-encoding|\*)\s*(,|$)/i.test(v))) return;
  headers["vary"] = values.length === 0 ? "Accept-Encoding" : [...values, "Accept-Encoding"];
}

/** The encoding a response gets, or `null`: the headers and status decide, not the body. */
function encodingFor(acceptEncoding: string | string[] | undefined, status: number, headers: HeaderMap): Encoding | null {
  if (status !== 200 && status !== 201 && status !== 202 && status !== 203) return null;
  if (headers["content-encoding"] !== undefined || headers["content-range"] !== undefined) return null;
  if (!isCompressible(headers["content-type"])) return null;
  return chooseEncoding(acceptEncoding);
}

/**
 * The encoding a whole body of `length` bytes gets, or `null`: compressible, long enough, and
 * accepted by the client. Decided before the ETag, which names the representation.
 */
export function bodyEncoding(acceptEncoding: string | string[] | undefined, status: number, headers: HeaderMap, length: number): Encoding | null {
  if (length < MIN_COMPRESS_LENGTH) return null;
  return encodingFor(acceptEncoding, status, headers);
}

/**
 * The encoding a streamed response of `contentType` gets, or `null` (a small streamed file is
 * compressed too, as in Tornado). For handlers that compare ETags before the head is sent.
 */
export function streamEncoding(acceptEncoding: string | string[] | undefined, contentType: string): Encoding | null {
  return encodingFor(acceptEncoding, 200, { "content-type": contentType });
}

/**
 * The ETag of a representation encoded with `encoding`: RFC 9110 §8.8.3 wants one per
 * representation, so `"abc"` becomes `"abc-gzip"`. Applying it twice changes nothing.
 */
export function encodedEtag(etag: string, encoding: Encoding): string {
  const suffix = `-${encoding}"`;
  if (!etag.endsWith('"') || etag.endsWith(suffix)) return etag;
  return etag.slice(0, -1) + suffix;
}

/**
 * Compresses a whole body with `encoding`, setting `Content-Encoding` and the representation's
 * `ETag`, and dropping any `Content-Length` (the caller sets the new one).
 */
export function compressAs(encoding: Encoding, headers: HeaderMap, body: Body): Buffer {
  headers["content-encoding"] = encoding;
  delete headers["content-length"];
  const etag = headers["etag"];
  if (typeof etag === "string") headers["etag"] = encodedEtag(etag, encoding);
  return encoding === "br" ? brotliCompressSync(body, BROTLI_OPTIONS) : gzipSync(body);
}

/**
 * Compresses a whole body for the client when it is compressible and long enough (see
 * `compressAs`). Returns the body to send, compressed or not.
 */
export function compressBody(acceptEncoding: string | string[] | undefined, status: number, headers: HeaderMap, body: Body): Body {
  const encoding = bodyEncoding(acceptEncoding, status, headers, typeof body === "string" ? Buffer.byteLength(body) : body.length);
  return encoding === null ? body : compressAs(encoding, headers, body);
}

/** A streaming encoder: the zlib stream and the flush that makes what was written decodable. */
export interface Encoder {
  readonly stream: Gzip | BrotliCompress;
  readonly flushKind: number;
}

/** A gzip or brotli stream for a streamed response (the writer pipes it into the response). */
export function createEncoder(encoding: Encoding): Encoder {
  return encoding === "br"
    ? { stream: createBrotliCompress(BROTLI_OPTIONS), flushKind: constants.BROTLI_OPERATION_FLUSH }
    : { stream: createGzip(), flushKind: constants.Z_SYNC_FLUSH };
}

/**
 * Decides whether a streamed response is compressed, before its head is sent; when it is, sets
 * `Content-Encoding` and the representation's `ETag`, and removes `Content-Length` (the
 * compressed length is not known in advance). Whatever its length: a small static file is
 * compressed too (Tornado's `GZipContentEncoding` measures only a response finished in one piece).
 */
export function prepareStreamEncoding(acceptEncoding: string | string[] | undefined, status: number, headers: HeaderMap): Encoding | null {
  const encoding = encodingFor(acceptEncoding, status, headers);
  if (encoding === null) return null;
  headers["content-encoding"] = encoding;
  delete headers["content-length"];
  const etag = headers["etag"];
  if (typeof etag === "string") headers["etag"] = encodedEtag(etag, encoding);
  return encoding;
}
