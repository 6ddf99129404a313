/**
 * Response compression (the `compressResponse` setting): which encoding a client gets, which
 * responses are worth compressing, and the two ways a body is compressed — whole on `finish()`,
 * or as a stream that is sync-flushed on every `flush()` so a streamed response reaches the
 * client as it is written. Tornado's `GZipContentEncoding`, with brotli added.
 */
import type { ServerResponse } from "node:http";
import {
  brotliCompressSync, constants, createBrotliCompress, createGzip, gzipSync, type BrotliCompress, type Gzip,
} from "node:zlib";
import type { Body, HeaderMap } from "./headers.ts";

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
  const type = contentType.split(";", 1)[0]!.trim().toLowerCase();
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
 * Compresses a whole body for the client when it is compressible and long enough, setting
 * `Content-Encoding` and dropping any `Content-Length` (the caller sets the new one).
 * Returns the body to send, compressed or not.
 */
export function compressBody(acceptEncoding: string | string[] | undefined, status: number, headers: HeaderMap, body: Body): Body {
  const length = typeof body === "string" ? Buffer.byteLength(body) : body.length;
  if (length < MIN_COMPRESS_LENGTH) return body;
  const encoding = encodingFor(acceptEncoding, status, headers);
  if (encoding === null) return body;
  headers["content-encoding"] = encoding;
  delete headers["content-length"];
  return encoding === "br" ? brotliCompressSync(body, BROTLI_OPTIONS) : gzipSync(body);
}

/**
 * A streamed response's compressor: chunks go through gzip or brotli into the response, and
 * each `write` is sync-flushed so the client can decode everything written so far.
 */
export class StreamCompressor {
  readonly #z: Gzip | BrotliCompress;
  readonly #res: ServerResponse;
  readonly #flushKind: number;

  /**
   * Starts compressing a streamed response when it qualifies, setting `Content-Encoding` and
   * removing `Content-Length` (the compressed length is not known in advance). Call before the
   * head is sent. Returns `null` when the response goes out as it is.
   */
  static start(res: ServerResponse, acceptEncoding: string | string[] | undefined, status: number, headers: HeaderMap): StreamCompressor | null {
    // A declared length under the threshold (a small static file) is not worth a compressor.
    const declared = headers["content-length"];
    if (typeof declared === "string" && Number(declared) < MIN_COMPRESS_LENGTH) return null;
    const encoding = encodingFor(acceptEncoding, status, headers);
    if (encoding === null) return null;
    headers["content-encoding"] = encoding;
    delete headers["content-length"];
    return new StreamCompressor(res, encoding);
  }

  private constructor(res: ServerResponse, encoding: Encoding) {
    this.#res = res;
    this.#z = encoding === "br" ? createBrotliCompress(BROTLI_OPTIONS) : createGzip();
    this.#flushKind = encoding === "br" ? constants.BROTLI_OPERATION_FLUSH : constants.Z_SYNC_FLUSH;
    this.#z.pipe(res);
    // A client that goes away must not leave a compressor holding memory.
    res.once("close", () => this.#z.destroy());
    this.#z.on("error", () => res.destroy());
  }

  /** Compresses and sends a chunk; resolves once the response has taken it (backpressure). */
  write(chunk: Body): Promise<void> {
    const res = this.#res;
    if (res.destroyed) return Promise.resolve();
    const length = typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.length;
    if (length > 0) this.#z.write(chunk);
    return new Promise((resolve) => {
      this.#z.flush(this.#flushKind, () => {
        if (!res.writableNeedDrain || res.destroyed) return resolve();
        const done = (): void => { res.off("drain", done); res.off("close", done); resolve(); };
        res.on("drain", done);
        res.on("close", done);
      });
    });
  }

  /** Compresses the last chunk and ends the response. */
  end(chunk?: Body): void {
    if (chunk !== undefined && (typeof chunk === "string" ? chunk.length > 0 : chunk.length > 0)) this.#z.end(chunk);
    else this.#z.end();
  }
}
