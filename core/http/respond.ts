/**
 * The one writer: every rule about what goes on the wire, and the only code that calls
 * `writeHead`/`write`/`end` on a node response or answers on a raw socket (Koa's `respond()`).
 *
 * A `Response` is one request's outgoing side: status, headers, buffered body, and at finish
 * the rules in order — compression chosen (before the ETag: each representation has its own,
 * RFC 9110 §8.8.3), ETag and `If-None-Match` → 304, bodyless statuses (1xx/204/304, and what a
 * 304 must drop), `Content-Length` (set, or checked against what was written), cookies,
 * `Connection: close` (draining, `noKeepAlive`, an unread body, a length mismatch), `Vary`.
 * Streamed responses (`flush()`) go through the same head rules, then chunks with backpressure.
 * WebSocket frames are `ws`'s once the handshake is done: that socket no longer speaks HTTP.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { ErrorCode, TyphoonError, reasonPhrase } from "../errors.ts";
import { log } from "../log.ts";
import { hasBody } from "./body-read.ts";
import { addVaryAcceptEncoding, bodyEncoding, compressAs, createEncoder, encodedEtag, prepareStreamEncoding, type Encoder } from "./compress.ts";
import { errorPage } from "./error-page.ts";
import { etagMatches } from "./etag.ts";
import { bodyLength, checkHeader, isBodyless, joinChunks, newHeaderMap, reasonPhraseFor, type Body, type HeaderMap } from "./headers.ts";

/** What the writer asks of the code that owns the response (the handler). */
export interface ResponseOwner {
  /** The ETag of a whole body, or `null` for none (Tornado's `compute_etag`). */
  computeEtag(body: Body): string | null;
  /** The request, as log lines name it (method, URI, client). */
  readonly request: { readonly method: string; readonly uri: string; readonly remoteIp: string };
}

/** The response options that come from the application (read when a response needs them). */
export interface ResponseSettings {
  /** Compress responses the client accepts compressed (default off). */
  readonly compressResponse?: boolean | undefined;
  /** Automatic ETag and 304 (default on). */
  readonly etag?: boolean | undefined;
}

/** What the writer needs of the server: whether every response closes its connection now. */
export interface ResponseServer {
  readonly noKeepAlive: boolean;
  readonly drain: { readonly draining: boolean };
}

/** How log lines name a request: `GET /path?x=1 (127.0.0.1)`. */
export function describeRequest(request: ResponseOwner["request"]): string {
  return `${request.method} ${request.uri} (${request.remoteIp})`;
}

/** One request's outgoing response. */
export class Response {
  #status = 200;
  #reason: string | undefined = undefined;
  #headers: HeaderMap = defaultHeaders();
  #chunks: Body[] = [];
  #headersWritten = false;
  #finished = false;
  #closeAfter = false;
  #compressor: StreamCompressor | null = null;
  // A streamed response with its own Content-Length: bytes declared (-1: none) and sent.
  #declaredLength = -1;
  #streamedLength = 0;
  // Body bytes handed to the socket (the access log's `bytes`).
  #bytes = 0;
  readonly #res: ServerResponse;
  readonly #req: IncomingMessage;
  readonly #owner: ResponseOwner;
  readonly #settings: ResponseSettings;
  readonly #server: ResponseServer;

  constructor(res: ServerResponse, req: IncomingMessage, owner: ResponseOwner, settings: ResponseSettings, server: ResponseServer) {
    this.#res = res;
    this.#req = req;
    this.#owner = owner;
    this.#settings = settings;
    this.#server = server;
  }

  get status(): number {
    return this.#status;
  }

  /** The reason phrase set with the status, if any. */
  get reason(): string | undefined {
    return this.#reason;
  }

  /** Body bytes written so far (compressed when the whole body was). */
  get bytesWritten(): number {
    return this.#bytes;
  }

  get headersWritten(): boolean {
    return this.#headersWritten;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Sets the status; an unknown code or an unsendable reason becomes `Unknown`. */
  setStatus(status: number, reason?: string): void {
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new TyphoonError(ErrorCode.STATUS_CODE, `Invalid status ${status}`);
    this.#status = status;
    this.#reason = reasonPhraseFor(status, reason);
  }

  setHeader(name: string, value: string | number | Date): void {
    this.#headers[name.toLowerCase()] = checkHeader(name, value);
  }

  /** Sets a header whose lower-case name and value the caller has already checked. */
  setCheckedHeader(lowerName: string, value: string): void {
    this.#headers[lowerName] = value;
  }

  addHeader(name: string, value: string | number | Date): void {
    const key = name.toLowerCase();
    const text = checkHeader(name, value);
    const current = this.#headers[key];
    this.#headers[key] = current === undefined ? text : Array.isArray(current) ? [...current, text] : [current, text];
  }

  clearHeader(name: string): void {
    delete this.#headers[name.toLowerCase()];
  }

  getHeader(name: string): string | string[] | undefined {
    return this.#headers[name.toLowerCase()];
  }

  /** Back to a fresh 200 with the default headers and nothing buffered. */
  clear(): void {
    this.#headers = defaultHeaders();
    this.#status = 200;
    this.#reason = undefined;
    this.#chunks = [];
  }

  /** Drops what is buffered, keeping status and headers. */
  clearBody(): void {
    this.#chunks = [];
  }

  /** Buffers a string, bytes, or a plain object/array sent as JSON. */
  write(chunk: string | Uint8Array | object): void {
    if (this.#finished) throw new TyphoonError(ErrorCode.RESPONSE_FINISHED, "write() after finish()");
    if (typeof chunk === "string") this.#chunks.push(chunk);
    else if (chunk instanceof Uint8Array) this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    else if (typeof chunk === "object" && chunk !== null) {
      // Escaping "</" keeps JSON safe inside a <script> block (Tornado's json_encode).
      this.#chunks.push(scriptSafe(JSON.stringify(chunk)));
      this.#headers["content-type"] = "application/json; charset=UTF-8";
    } else throw new TypeError(`write() takes a string, bytes or an object, not ${typeof chunk}`);
  }

  /** Buffers text already serialized as JSON (a compiled response serializer's output). */
  writeJson(text: string): void {
    if (this.#finished) throw new TyphoonError(ErrorCode.RESPONSE_FINISHED, "write() after finish()");
    // Escaping "</" keeps JSON safe inside a <script> block (Tornado's json_encode).
    this.#chunks.push(scriptSafe(text));
    this.#headers["content-type"] = "application/json; charset=UTF-8";
  }

  /** After this response the connection is closed (an unread body, a length mismatch). */
  closeAfter(): void {
    this.#closeAfter = true;
  }

  /**
   * Sends the head (first call) and what is buffered; later chunks stream (chunked on
   * HTTP/1.1). Resolves once the socket has taken the data (backpressure).
   */
  flush(cookies: readonly string[]): Promise<void> {
    const res = this.#res;
    if (!this.#headersWritten) {
      this.#headersWritten = true;
      this.#finalHeaders(cookies);
      if (this.#settings.compressResponse === true) {
        const encoding = prepareStreamEncoding(this.#req.headers["accept-encoding"], this.#status, this.#headers);
        if (encoding !== null) this.#compressor = new StreamCompressor(res, createEncoder(encoding));
      }
      const declared = this.#headers["content-length"];
      if (declared !== undefined && this.#compressor === null && this.#req.method !== "HEAD") this.#declaredLength = declaredLength(declared);
      writeHead(res, this.#status, this.#reason, this.#headers);
    }
    let body = joinChunks(this.#chunks);
    this.#chunks = [];
    this.#bytes += bodyLength(body);
    if (this.#compressor !== null) return this.#compressor.write(body);
    if (this.#declaredLength >= 0) body = this.#withinDeclaredLength(body);
    if (bodyLength(body) === 0 || res.destroyed) return Promise.resolve();
    if (res.write(body)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => { res.off("drain", done); res.off("close", done); resolve(); };
      res.on("drain", done);
      res.on("close", done);
    });
  }

  /**
   * Sends everything: the whole response in one write, or the end of a streamed one.
   * `cookies` are the `Set-Cookie` values of cookies set during the request.
   */
  finish(cookies: readonly string[]): void {
    if (this.#finished) throw new TyphoonError(ErrorCode.RESPONSE_FINISHED, "finish() called twice");
    this.#finished = true;
    const res = this.#res;
    if (this.#headersWritten) {
      let rest = joinChunks(this.#chunks);
      this.#chunks = [];
      if (this.#declaredLength >= 0) rest = this.#withinDeclaredLength(rest);
      this.#bytes += bodyLength(rest);
      if (this.#compressor !== null) this.#compressor.end(rest);
      else if (bodyLength(rest) > 0) res.end(rest);
      else res.end();
      if (this.#declaredLength >= 0 && this.#streamedLength !== this.#declaredLength) this.#lengthMismatch(this.#streamedLength, true);
      return;
    }
    this.#headersWritten = true;
    let body: Body | null = joinChunks(this.#chunks);
    this.#chunks = [];
    const method = this.#req.method;
    const headers = this.#headers;
    const settings = this.#settings;
    const encoding = settings.compressResponse === true ? bodyEncoding(this.#req.headers["accept-encoding"], this.#status, headers, bodyLength(body)) : null;
    if (this.#status === 200 && (method === "GET" || method === "HEAD") && settings.etag !== false && headers["etag"] === undefined) {
      let etag = this.#owner.computeEtag(body);
      if (etag !== null) {
        if (encoding !== null) etag = encodedEtag(etag, encoding);
        headers["etag"] = etag;
        if (etagMatches(this.#req.headers["if-none-match"], etag)) this.#status = 304;
      }
    }
    if (isBodyless(this.#status)) {
      body = null;
      delete headers["content-length"];
      if (this.#status === 304) {
        // RFC 9110 §15.4.5: a 304 describes the stored representation; these would contradict it.
        delete headers["content-type"];
        delete headers["content-encoding"];
        delete headers["content-language"];
      }
    } else {
      if (encoding !== null) body = compressAs(encoding, headers, body);
      const declared = headers["content-length"];
      if (declared === undefined) {
        const length = bodyLength(body);
        headers["content-length"] = String(length);
        if (method !== "HEAD") this.#bytes = length;
      } else if (method !== "HEAD") {
        body = this.#checkDeclaredLength(declared, body);
        this.#bytes = bodyLength(body);
      }
    }
    this.#finalHeaders(cookies);
    writeWhole(res, this.#status, this.#reason, headers, body);
  }

  /** The status line is gone: the only honest signal left is to cut the connection. */
  abort(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#res.destroy();
  }

  /**
   * When handling an error failed too: an empty 500 if nothing was sent yet, else the response
   * in progress is cut (a complete one keeps its connection).
   */
  lastResort(): void {
    const res = this.#res;
    this.#finished = true;
    if (!res.headersSent && !res.destroyed) writeWhole(res, 500, undefined, { "content-length": "0", connection: "close" }, null);
    else if (!res.writableEnded) res.destroy();
  }

  // Cookies, Connection and Vary: the last rules before the head goes out.
  #finalHeaders(cookies: readonly string[]): void {
    const headers = this.#headers;
    if (cookies.length > 0) headers["set-cookie"] = [...cookies];
    const req = this.#req;
    const server = this.#server;
    if (this.#closeAfter || server.noKeepAlive || server.drain.draining) headers["connection"] = "close";
    // A streaming handler that answered before reading the body (a 401 from prepare()): the
    // unread body must not be parsed as the next request, and is not worth reading.
    else if (hasBody(req) && !req.complete) headers["connection"] = "close";
    if (this.#settings.compressResponse === true) addVaryAcceptEncoding(headers);
  }

  // A handler that declares a Content-Length and writes another number of bytes would
  // desynchronise the connection: the next response would be read as part of this one.
  #checkDeclaredLength(declared: string | string[], body: Body): Body {
    const wanted = declaredLength(declared);
    const length = bodyLength(body);
    if (wanted === length) return body;
    this.#closeAfter = true;
    log.error(`Content-Length ${String(declared)} but ${length} bytes written in ${describeRequest(this.#owner.request)}; closing the connection after the response`);
    if (wanted < 0) {
      this.#headers["content-length"] = String(length);
      return body;
    }
    // Too many bytes: only the declared ones go out. Too few: the client sees the response cut short, then the close.
    return length > wanted ? (typeof body === "string" ? Buffer.from(body) : body).subarray(0, wanted) : body;
  }

  // The streamed form: bytes past the declared length are never sent.
  #withinDeclaredLength(chunk: Body): Body {
    const room = this.#declaredLength - this.#streamedLength;
    const length = bodyLength(chunk);
    if (length <= room) {
      this.#streamedLength += length;
      return chunk;
    }
    this.#streamedLength = this.#declaredLength;
    this.#lengthMismatch(this.#streamedLength - room + length, false);
    return (typeof chunk === "string" ? Buffer.from(chunk) : chunk).subarray(0, room);
  }

  // The head is gone, so `Connection: close` cannot be added: the socket is closed once what
  // was sent is flushed, and no later response can follow on it.
  #lengthMismatch(written: number, atFinish: boolean): void {
    if (this.#closeAfter) return;
    this.#closeAfter = true;
    const res = this.#res;
    // The request's socket: the response lets go of it once finished.
    const socket = this.#req.socket;
    // A client that went away mid-download (a static file's loop stops early) is not an error.
    if (socket === null || socket.destroyed || res.destroyed) return;
    log.error(`Content-Length ${this.#declaredLength} but ${atFinish ? "" : "more than "}${written} bytes written in ${describeRequest(this.#owner.request)}; closing the connection after the response`);
    if (res.writableEnded) socket.destroySoon();
    else res.once("finish", () => socket.destroySoon());
  }
}

/**
 * A streamed response's compressor: chunks go through gzip or brotli into the response, and
 * each `write` is sync-flushed so the client can decode everything written so far.
 */
class StreamCompressor {
  readonly #encoder: Encoder;
  readonly #res: ServerResponse;

  constructor(res: ServerResponse, encoder: Encoder) {
    this.#res = res;
    this.#encoder = encoder;
    const z = encoder.stream;
    z.pipe(res);
    // A client that goes away must not leave a compressor holding memory.
    res.once("close", () => z.destroy());
    z.on("error", () => res.destroy());
  }

  /** Compresses and sends a chunk; resolves once the response has taken it (backpressure). */
  write(chunk: Body): Promise<void> {
    const res = this.#res;
    if (res.destroyed) return Promise.resolve();
    const z = this.#encoder.stream;
    if (bodyLength(chunk) > 0) z.write(chunk);
    return new Promise((resolve) => {
      z.flush(this.#encoder.flushKind, () => {
        if (!res.writableNeedDrain || res.destroyed) return resolve();
        const done = (): void => { res.off("drain", done); res.off("close", done); resolve(); };
        res.on("drain", done);
        res.on("close", done);
      });
    });
  }

  /** Compresses the last chunk and ends the response. */
  end(chunk: Body): void {
    if (bodyLength(chunk) > 0) this.#encoder.stream.end(chunk);
    else this.#encoder.stream.end();
  }
}

/**
 * Answers a request with an error page before any handler exists (no route, bad path, overload).
 */
export function sendErrorPage(res: ServerResponse, status: number, accept: string | undefined, extra?: HeaderMap, close = false): void {
  const page = errorPage(status, undefined, accept);
  const headers: HeaderMap = { ...extra, "content-type": page.contentType, "content-length": String(Buffer.byteLength(page.body)) };
  if (close) headers["connection"] = "close";
  writeWhole(res, status, undefined, headers, page.body);
}

/**
 * Answers on a raw socket that node:http no longer (or never) parsed into a response: a client
 * error (400/408/431) or a refused upgrade. The answer is `Connection: close` with no body;
 * `after` runs once it is written.
 */
export function answerOnSocket(socket: Duplex, status: number, after?: () => void): void {
  socket.end(`HTTP/1.1 ${status} ${reasonPhrase(status)}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, after);
}

// Most JSON has no "</": includes() finds that out for less than a global replace costs.
function scriptSafe(json: string): string {
  return json.includes("</") ? json.replace(/<\//g, "<\\/") : json;
}

/** A declared Content-Length as a number; -1 when it is not one (several, or not digits). */
function declaredLength(declared: string | string[]): number {
  return typeof declared === "string" && /^\d+$/.test(declared) ? Number(declared) : -1;
}

function defaultHeaders(): HeaderMap {
  const headers = newHeaderMap();
  headers["content-type"] = "text/html; charset=UTF-8";
  // No Server header: it costs bytes on every response and only tells scanners what runs here
  // (Tornado sends one; setDefaultHeaders() can add it back).
  return headers;
}

function writeHead(res: ServerResponse, status: number, reason: string | undefined, headers: HeaderMap): void {
  if (reason === undefined) res.writeHead(status, headers);
  else res.writeHead(status, reason, headers);
}

// HEAD and bodyless statuses send no body (node drops it for HEAD).
function writeWhole(res: ServerResponse, status: number, reason: string | undefined, headers: HeaderMap, body: Body | null): void {
  writeHead(res, status, reason, headers);
  if (body === null || isBodyless(status)) res.end();
  else res.end(body);
}
