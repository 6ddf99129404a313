/**
 * Reading a request body off the socket within its limits (size, inactivity, optional gzip or
 * deflate): whole for the lifecycle's body step, or chunk by chunk for a `streamRequestBody`
 * handler. Parsing what was read is `body.ts`.
 */
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { createGunzip, createInflate } from "node:zlib";
import { BodyTooLargeError, HTTPError } from "../errors.ts";

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
 * Reads the whole body within `limits`. A declared `Content-Length` over `maxBodySize` → 413
 * before any byte is read; more bytes than that → 413 (reading stops at once); a pause longer
 * than `bodyTimeout` → 408; a corrupt compressed body → 400.
 */
export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  if (declaredTooLarge(req, limits.maxBodySize)) return Promise.reject(declaredTooLargeError(limits.maxBodySize));
  return new Promise<Buffer>((resolve, reject) => startRead(req, limits, null, resolve, reject));
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
  return new Promise<void>((resolve, reject) => startRead(req, limits, onChunk, () => resolve(), reject));
}

function startRead(req: IncomingMessage, limits: BodyLimits, onChunk: ((chunk: Buffer) => unknown) | null,
  resolve: (body: Buffer) => void, reject: (err: unknown) => void): void {
  let stream: Readable;
  try {
    stream = bodyStream(req, limits.decompressRequest);
  } catch (err) {
    reject(err);
    return;
  }
  new BodyRead(req, stream, limits, onChunk, resolve, reject).start();
}

/** Where a body being read keeps its state: on the request (and its decompressor), for the listeners. */
const READ = Symbol("typhoon.bodyRead");
type Reading = { [READ]?: BodyRead | undefined };

/**
 * One body being read (see {@link readBody} and {@link streamBody}): kept whole when `onChunk`
 * is `null`, else handed to it chunk by chunk. The listeners are module functions that find
 * their read on the emitter, so a request costs no closures (under tsx, each named closure also
 * costs a `__name` call: 5% of a small POST, measured).
 *
 * `bodyTimeout` costs one timer per body, not one per chunk: a chunk only notes the time, and
 * the timer, when it fires, waits out whatever is left of the pause since the last chunk.
 */
class BodyRead {
  #size = 0;
  #chunks: Buffer[] = [];
  #timer: NodeJS.Timeout | undefined = undefined;
  /** `performance.now()` of the last chunk (or of the start, or of the app's last wait). */
  #lastActive = 0;
  #busy = false;
  #ended = false;
  #settled = false;

  constructor(
    readonly req: IncomingMessage,
    readonly stream: Readable,
    readonly limits: BodyLimits,
    readonly onChunk: ((chunk: Buffer) => unknown) | null,
    readonly resolve: (body: Buffer) => void,
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

  /** The client is expected to send more within `bodyTimeout` from now. */
  arm(): void {
    const timeout = this.limits.bodyTimeout;
    if (timeout <= 0) return;
    this.#lastActive = performance.now();
    this.#timer ??= setTimeout(bodyTimedOut, timeout, this);
  }

  /** The timer fired: a 408 if the client has been silent for `bodyTimeout`, else wait for the rest. */
  timedOut(): void {
    this.#timer = undefined;
    // While the app works on a chunk the clock is stopped; resuming re-arms it.
    if (this.#settled || this.#busy) return;
    const left = this.limits.bodyTimeout - (performance.now() - this.#lastActive);
    // Timers may fire up to a millisecond early (libuv's clock is the loop's).
    if (left > 1) this.#timer = setTimeout(bodyTimedOut, left, this);
    else this.settle(new HTTPError(408, "Timed out reading the request body"));
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
    if (err === undefined) {
      const chunks = this.#chunks;
      this.resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size));
    } else {
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
    if (this.onChunk === null) {
      this.#chunks.push(chunk);
      if (this.limits.bodyTimeout > 0) this.#lastActive = performance.now();
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
  read.timedOut();
}

function declaredTooLargeError(maxBodySize: number): BodyTooLargeError {
  return new BodyTooLargeError(`Content-Length over maxBodySize (${maxBodySize} bytes)`);
}

/**
 * The body step of a `streamRequestBody` handler: each chunk to `onChunk` (awaited, so the
 * client is slowed to the handler's pace), within the server's limits.
 */
export async function receiveStream(req: IncomingMessage, limits: BodyLimits, onChunk: (chunk: Buffer) => unknown): Promise<void> {
  if (!hasBody(req)) return;
  if (declaredTooLarge(req, limits.maxBodySize)) throw declaredTooLargeError(limits.maxBodySize);
  // Not `for await`: leaving that loop on an error destroys the request, and with it the
  // socket the error answer must go out on; and a stalled client needs bodyTimeout here too.
  await streamBody(req, limits, onChunk);
}
