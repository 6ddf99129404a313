/**
 * Request bodies: reading one from the socket within its limits (size, inactivity, optional
 * gzip), and parsing query strings, form-urlencoded, multipart and JSON bodies into arguments.
 */
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { createGunzip, createInflate } from "node:zlib";
import { BadBodyError, BodyTooLargeError, HTTPError } from "../errors.ts";
import { log } from "../log.ts";
import { decodeFormComponent, decodeUtf8 as decodeText, percentBytes } from "./percent.ts";

/** Arguments by name; every name has one or more values, in order. */
export type ArgumentMap = Record<string, string[]>;

/** A file uploaded in a multipart body. */
export interface UploadedFile {
  readonly filename: string;
  readonly contentType: string;
  readonly body: Buffer;
}

/** Uploaded files by field name. */
export type FileMap = Record<string, UploadedFile[]>;

/** The limits a body is read under. */
export interface BodyLimits {
  /** Largest body accepted, in bytes (after decompression when `decompressRequest` is on). */
  readonly maxBodySize: number;
  /** Longest pause between two chunks of the body, in ms (0: none). */
  readonly bodyTimeout: number;
  /** Decompress `Content-Encoding: gzip`/`deflate` bodies. */
  readonly decompressRequest: boolean;
}

/** Whether the request announces a body at all (`Content-Length` > 0 or chunked). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  if (length !== undefined) return length !== "0";
  return req.headers["transfer-encoding"] !== undefined;
}

/**
 * The declared `Content-Length` is over the limit: answer 413 without reading the body.
 */
export function declaredTooLarge(req: IncomingMessage, maxBodySize: number): boolean {
  const length = req.headers["content-length"];
  return length !== undefined && Number(length) > maxBodySize;
}

/**
 * The body stream a handler reads from: the request itself, or a decompressor in front of it.
 * Unknown encodings are refused with 415 rather than handed on compressed.
 */
export function bodyStream(req: IncomingMessage, decompress: boolean): Readable {
  const encoding = req.headers["content-encoding"]?.trim().toLowerCase();
  if (!decompress || encoding === undefined || encoding === "identity") return req;
  if (encoding === "gzip" || encoding === "x-gzip") return req.pipe(createGunzip());
  if (encoding === "deflate") return req.pipe(createInflate());
  throw new HTTPError(415, `Unsupported Content-Encoding ${encoding}`);
}

/**
 * Once nobody reads a decompressor any more, more corrupt input must not make it emit an
 * 'error' with no listener: that would be an uncaught exception, and stop the process.
 */
function releaseDecompressor(req: IncomingMessage, stream: Readable): void {
  if (stream === req) return;
  stream.on("error", () => {});
  if (!stream.readableEnded) {
    req.unpipe();
    stream.destroy();
  }
}

/**
 * Reads the whole body within `limits`. Over `maxBodySize` → 413 (reading stops at once);
 * a pause longer than `bodyTimeout` → 408; a corrupt compressed body → 400.
 */
export async function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  await streamBody(req, limits, (chunk) => {
    chunks.push(chunk);
    size += chunk.length;
  });
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/**
 * Streams the body to `onChunk` within `limits` (a `streamRequestBody` handler's
 * `dataReceived`): the next chunk is read only once the promise `onChunk` returns settles
 * (backpressure). Over `maxBodySize` → 413; a pause longer than `bodyTimeout` while waiting for
 * the client → 408; a client that goes away or a corrupt compressed body → 400. An error thrown
 * by `onChunk` rejects as it is (the app's own failure). Never destroys the connection, so the
 * error can still be answered.
 */
export function streamBody(req: IncomingMessage, limits: BodyLimits, onChunk: (chunk: Buffer) => unknown): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let stream: Readable;
    try {
      stream = bodyStream(req, limits.decompressRequest);
    } catch (err) {
      reject(err);
      return;
    }
    new BodyRead(req, stream, limits, onChunk, resolve, reject).start();
  });
}

/** Where a body being read keeps its state: on the request (and its decompressor), for the listeners. */
const READ = Symbol("typhoon.bodyRead");
type Reading = { [READ]?: BodyRead | undefined };

/**
 * One body being read (see {@link streamBody}). The listeners are module functions that find
 * their read on the emitter, so a request costs no closures (under tsx, each named closure also
 * costs a `__name` call: 5% of a small POST, measured).
 */
class BodyRead {
  #size = 0;
  #timer: NodeJS.Timeout | undefined = undefined;
  #busy = false;
  #ended = false;
  #settled = false;

  constructor(
    readonly req: IncomingMessage,
    readonly stream: Readable,
    readonly limits: BodyLimits,
    readonly onChunk: (chunk: Buffer) => unknown,
    readonly resolve: () => void,
    readonly reject: (err: unknown) => void,
  ) {}

  start(): void {
    (this.req as Reading)[READ] = this;
    (this.stream as Reading)[READ] = this;
    this.stream.on("data", onBodyData);
    this.stream.on("end", onBodyEnd);
    this.stream.on("error", onBodyError);
    this.req.on("aborted", onBodyAborted);
    this.arm();
  }

  arm(): void {
    if (this.limits.bodyTimeout > 0) {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(bodyTimedOut, this.limits.bodyTimeout, this);
    }
  }

  settle(err?: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    const { req, stream } = this;
    stream.off("data", onBodyData);
    stream.off("end", onBodyEnd);
    stream.off("error", onBodyError);
    req.off("aborted", onBodyAborted);
    (req as Reading)[READ] = undefined;
    (stream as Reading)[READ] = undefined;
    releaseDecompressor(req, stream);
    if (err === undefined) this.resolve();
    else {
      stream.pause();
      this.reject(err);
    }
  }

  data(chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.limits.maxBodySize) {
      this.settle(new BodyTooLargeError(`Body larger than maxBodySize (${this.limits.maxBodySize} bytes)`));
      return;
    }
    let result: unknown;
    try {
      result = this.onChunk(chunk);
    } catch (err) {
      this.settle(err);
      return;
    }
    if (result === null || typeof result !== "object" || typeof (result as { then?: unknown }).then !== "function") {
      this.arm();
      return;
    }
    // The app is busy with this chunk: stop reading (and stop the clock, the wait is ours).
    this.#busy = true;
    clearTimeout(this.#timer);
    this.stream.pause();
    (result as PromiseLike<unknown>).then(() => {
      this.#busy = false;
      if (this.#settled) return;
      if (this.#ended) this.settle();
      else {
        this.arm();
        this.stream.resume();
      }
    }, (err: unknown) => this.settle(err));
  }

  end(): void {
    this.#ended = true;
    if (!this.#busy) this.settle();
  }

  error(err: Error): void {
    this.settle(new HTTPError(400, this.stream === this.req ? `Error reading the request body: ${err.message}` : `Corrupt compressed body: ${err.message}`));
  }
}

function onBodyData(this: Reading, chunk: Buffer): void {
  this[READ]?.data(chunk);
}

function onBodyEnd(this: Reading): void {
  this[READ]?.end();
}

function onBodyError(this: Reading, err: Error): void {
  this[READ]?.error(err);
}

function onBodyAborted(this: Reading): void {
  this[READ]?.settle(new HTTPError(400, "Client closed the connection while sending the body"));
}

function bodyTimedOut(read: BodyRead): void {
  read.settle(new HTTPError(408, "Timed out reading the request body"));
}

/** A declared `Content-Length` over `maxBodySize`: 413 before any byte is read. */
function refuseDeclaredTooLarge(req: IncomingMessage, maxBodySize: number): void {
  if (declaredTooLarge(req, maxBodySize)) throw new BodyTooLargeError(`Content-Length over maxBodySize (${maxBodySize} bytes)`);
}

/**
 * The lifecycle's body step: a declared `Content-Length` over `maxBodySize` is a 413 before any
 * byte is read; otherwise the body is read within the limits and parsed.
 */
export async function receiveBody(req: IncomingMessage, limits: BodyLimits): Promise<{ body: Buffer; parsed: ParsedBody }> {
  refuseDeclaredTooLarge(req, limits.maxBodySize);
  const body = await readBody(req, limits);
  return { body, parsed: parseBody(req.headers["content-type"], body) };
}

/**
 * The body step of a `streamRequestBody` handler: each chunk to `onChunk` (awaited, so the
 * client is slowed to the handler's pace), within the server's limits.
 */
export async function receiveStream(req: IncomingMessage, limits: BodyLimits, onChunk: (chunk: Buffer) => unknown): Promise<void> {
  if (!hasBody(req)) return;
  refuseDeclaredTooLarge(req, limits.maxBodySize);
  // Not `for await`: leaving that loop on an error destroys the request, and with it the
  // socket the error answer must go out on; and a stalled client needs bodyTimeout here too.
  await streamBody(req, limits, onChunk);
}

/**
 * Parses a query string or form body. Blank values are kept (Tornado's `keep_blank_values`); a
 * stray `%` stays as it is; invalid UTF-8 → 400.
 */
export function parseQueryString(query: string): ArgumentMap {
  const out = Object.create(null) as ArgumentMap;
  if (query === "") return out;
  for (const pair of query.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = decodeFormComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? "" : decodeFormComponent(pair.slice(eq + 1));
    (out[name] ??= []).push(value);
  }
  return out;
}

/** The parsed body: its arguments and files, and the JSON value for a JSON body. */
export interface ParsedBody {
  readonly arguments: ArgumentMap;
  readonly files: FileMap;
  /** The parsed value of a JSON body (absent for other bodies), so it is parsed once. */
  readonly json?: unknown;
}

/**
 * Parses a body by its `Content-Type`, leniently as Tornado's `parse_body_arguments` does:
 * form-urlencoded and multipart fill arguments and files, a JSON object's scalar members
 * become arguments too; what cannot be parsed (binary data under a form type, invalid JSON, a
 * broken multipart body) is logged and left out, and the request is served with its raw body
 * in `request.body`. Only `getJsonBody()` and validation reject a body.
 */
export function parseBody(contentType: string | undefined, body: Buffer): ParsedBody {
  try {
    return parseStrictly(contentType, body);
  } catch (err) {
    if (!(err instanceof HTTPError) || err.status !== 400) throw err;
    log.warn(`Body arguments left out (the raw body is in request.body): ${err.logMessage ?? err.message}`);
    return { arguments: Object.create(null) as ArgumentMap, files: Object.create(null) as FileMap };
  }
}

function parseStrictly(contentType: string | undefined, body: Buffer): ParsedBody {
  const files = Object.create(null) as FileMap;
  if (contentType === undefined || body.length === 0) return { arguments: Object.create(null) as ArgumentMap, files };
  const type = contentType.split(";", 1)[0]!.trim().toLowerCase();
  if (type === "application/x-www-form-urlencoded") return { arguments: parseForm(body), files };
  if (type === "multipart/form-data") {
    const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
    if (boundary === null) throw new HTTPError(400, "multipart/form-data without a boundary");
    return parseMultipart(body, boundary[1] ?? boundary[2]!);
  }
  if (type === "application/json" || type.endsWith("+json")) {
    const value = parseJson(body);
    const args = Object.create(null) as ArgumentMap;
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      for (const [name, v] of Object.entries(value)) {
        if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") args[name] = [String(v)];
      }
    }
    return { arguments: args, files, json: value };
  }
  return { arguments: Object.create(null) as ArgumentMap, files };
}

// A form body: UTF-8 text on the fast path; binary data or escapes that are not UTF-8 are
// parsed argument by argument, keeping the ones that decode (curl --data-binary sends a file
// under this type).
function parseForm(body: Buffer): ArgumentMap {
  let text: string | null = null;
  try {
    text = utf8.decode(body);
  } catch {
    // Not UTF-8 as a whole: below, one argument at a time.
  }
  if (text !== null) {
    try {
      return parseQueryString(text);
    } catch (err) {
      if (!(err instanceof HTTPError)) throw err;
    }
  }
  const out = Object.create(null) as ArgumentMap;
  let dropped = 0;
  for (const pair of body.toString("latin1").split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    try {
      const name = decodeText(percentBytes(eq === -1 ? pair : pair.slice(0, eq), true), "a form argument name");
      const value = eq === -1 ? "" : decodeText(percentBytes(pair.slice(eq + 1), true), `form argument ${name}`);
      (out[name] ??= []).push(value);
    } catch {
      dropped++;
    }
  }
  if (dropped > 0) log.warn(`Invalid x-www-form-urlencoded body: ${dropped} argument(s) that are not UTF-8 left out (the raw body is in request.body)`);
  return out;
}

/** Parses a JSON body; invalid JSON or UTF-8 → 400. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(decodeUtf8(body, "JSON body"));
  } catch (err) {
    if (err instanceof HTTPError) throw err;
    throw badBody(`Invalid JSON body: ${(err as Error).message}`);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(body: Buffer, what: string): string {
  try {
    return utf8.decode(body);
  } catch {
    throw badBody(`Invalid UTF-8 in the ${what}`);
  }
}

function badBody(message: string): HTTPError {
  return new BadBodyError(message);
}

/** Parses `multipart/form-data` (RFC 7578) held whole in memory. */
function parseMultipart(body: Buffer, boundary: string): ParsedBody {
  const args = Object.create(null) as ArgumentMap;
  const files = Object.create(null) as FileMap;
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  if (pos === -1) throw badBody("multipart body without its boundary");
  for (;;) {
    pos += delimiter.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // "--": the closing delimiter
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    const next = body.indexOf(delimiter, pos);
    if (next === -1) throw badBody("multipart body is truncated (no closing boundary)");
    // The part ends with CRLF before the next delimiter.
    const part = body.subarray(pos, next >= 2 && body[next - 2] === 0x0d ? next - 2 : next);
    const headerEnd = part.indexOf("\r\n\r\n");
    if (headerEnd === -1) throw badBody("multipart part without headers");
    const headers = part.subarray(0, headerEnd).toString("latin1");
    const content = part.subarray(headerEnd + 4);
    const disposition = /^content-disposition:\s*form-data(.*)$/im.exec(headers);
    if (disposition === null) throw badBody("multipart part without Content-Disposition: form-data");
    const name = dispositionParam(disposition[1]!, "name");
    if (name === null) throw badBody("multipart part without a name");
    const filename = dispositionParam(disposition[1]!, "filename");
    // An empty file input is sent with `filename=""`: Tornado makes it an empty argument, not a file.
    if (filename !== null && filename !== "") {
      const type = /^content-type:\s*(.+)$/im.exec(headers)?.[1]?.trim() ?? "application/unknown";
      (files[name] ??= []).push({ filename, contentType: type, body: Buffer.from(content) });
    } else {
      (args[name] ??= []).push(decodeUtf8(content, `multipart field ${name}`));
    }
    pos = next;
  }
  return { arguments: args, files };
}

function dispositionParam(params: string, key: string): string | null {
  const m = new RegExp(`;\\s*${key}="((?:[^"\\\\]|\\\\.)*)"|;\\s*${key}=([^;\\s]+)`, "i").exec(params);
  if (m === null) return null;
  const raw = m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!;
  // Header bytes were read as latin1; browsers send UTF-8 names.
  return Buffer.from(raw, "latin1").toString("utf8");
}
