/**
 * Raw HTTP/1.x over a real TCP socket, for specs that must send what no well-behaved client
 * would (bad request lines, conflicting framing, bytes a header at a time) and see exactly what
 * the server sends back: every response on the connection, and whether the server closed it.
 */
import { connect, type Socket } from "node:net";

/** One response as read off the wire. */
export interface RawResponse {
  readonly version: string;
  readonly status: number;
  readonly reason: string;
  /** Lower-cased names; repeated headers joined with `, ` (except `set-cookie`, kept apart). */
  readonly headers: Record<string, string>;
  readonly setCookies: string[];
  /** The header block as sent, for checks on raw bytes (injection). */
  readonly head: string;
  /** The body, de-chunked. */
  readonly body: Buffer;
}

/** What happened on one connection. */
export interface Exchange {
  /** The complete responses, in order. */
  readonly responses: RawResponse[];
  /** The server closed (or reset) the connection before the exchange ended. */
  readonly closed: boolean;
  /** The connection was reset (ECONNRESET) rather than closed cleanly. */
  readonly reset: boolean;
  /** Neither the wanted responses nor a close came before the timeout. */
  readonly timedOut: boolean;
  /** Everything received, as latin1 text. */
  readonly raw: string;
  /** Bytes after the last complete response (a truncated or garbage answer). */
  readonly rest: string;
}

/** Options of {@link exchange}. */
export interface ExchangeOptions {
  /** Resolve as soon as this many complete responses have arrived (default: wait for the close). */
  responses?: number;
  /** Give up after this many ms (default 3000). */
  timeout?: number;
  /** Responses that carry no body whatever their headers say (answers to HEAD), by index. */
  bodyless?: readonly number[];
  /** Pause between the given chunks of the request, in ms (default 0: all at once). */
  gap?: number;
}

/** Opens a TCP connection to `127.0.0.1:port`. */
export function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/**
 * Sends `payload` (one chunk, or several with `gap` ms between them) on a fresh connection and
 * collects what comes back until `responses` complete responses, a close, or the timeout.
 * The connection is destroyed before this resolves.
 *
 * @example
 * const { responses } = await exchange(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", { responses: 1 });
 */
export async function exchange(port: number, payload: string | Buffer | readonly (string | Buffer)[], options: ExchangeOptions = {}): Promise<Exchange> {
  const socket = await open(port);
  const chunks = typeof payload === "string" || Buffer.isBuffer(payload) ? [payload] : payload;
  const result = collect(socket, options);
  void (async () => {
    for (const chunk of chunks) {
      if (socket.destroyed) return;
      socket.write(chunk);
      if (options.gap) await new Promise((r) => setTimeout(r, options.gap));
    }
  })();
  return result;
}

/** Collects responses from an open socket (see {@link exchange}); destroys it when done. */
export function collect(socket: Socket, options: ExchangeOptions = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    let reset = false;
    let settled = false;
    const finish = (closed: boolean, timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(received);
      const { responses, rest } = parseResponses(raw, options.bodyless ?? []);
      resolve({ responses, closed, reset, timedOut, raw: raw.toString("latin1"), rest: rest.toString("latin1") });
    };
    const timer = setTimeout(() => finish(false, true), options.timeout ?? 3000);
    socket.on("data", (chunk: Buffer) => {
      received.push(chunk);
      const wanted = options.responses;
      if (wanted !== undefined && parseResponses(Buffer.concat(received), options.bodyless ?? []).responses.length >= wanted) {
        finish(false, false);
      }
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNRESET" || err.code === "EPIPE") reset = true;
    });
    socket.on("close", () => finish(true, false));
  });
}

/**
 * Parses consecutive HTTP/1.x responses from `data`. Bodies are framed by `Content-Length`,
 * chunked encoding, or (neither) the rest of the data. Stops at the first incomplete one.
 */
export function parseResponses(data: Buffer, bodyless: readonly number[] = []): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let pos = 0;
  for (;;) {
    const headEnd = data.indexOf("\r\n\r\n", pos);
    if (headEnd === -1) break;
    const head = data.subarray(pos, headEnd).toString("latin1");
    const [statusLine = "", ...lines] = head.split("\r\n");
    const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(statusLine);
    if (m === null) break;
    const headers: Record<string, string> = {};
    const setCookies: string[] = [];
    for (const line of lines) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "set-cookie") setCookies.push(value);
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const status = Number(m[2]);
    let bodyStart = headEnd + 4;
    let body: Buffer;
    if (bodyless.includes(responses.length) || status < 200 || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (headers["transfer-encoding"]?.toLowerCase().includes("chunked")) {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const lineEnd = data.indexOf("\r\n", bodyStart);
        if (lineEnd === -1) break;
        const size = parseInt(data.subarray(bodyStart, lineEnd).toString("latin1"), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const trailerEnd = data.indexOf("\r\n\r\n", lineEnd);
          if (trailerEnd === -1 && data.length < lineEnd + 4) break;
          bodyStart = trailerEnd === -1 ? lineEnd + 4 : trailerEnd + 4;
          complete = true;
          break;
        }
        if (data.length < lineEnd + 2 + size + 2) break;
        parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        bodyStart = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (headers["content-length"] !== undefined) {
      const length = Number(headers["content-length"]);
      if (data.length < bodyStart + length) break;
      body = data.subarray(bodyStart, bodyStart + length);
      bodyStart += length;
    } else {
      body = data.subarray(bodyStart);
      bodyStart = data.length;
    }
    responses.push({ version: m[1]!, status, reason: m[3] ?? "", headers, setCookies, head, body: Buffer.from(body) });
    pos = bodyStart;
  }
  return { responses, rest: data.subarray(pos) };
}

/** A minimal well-formed request: `GET path` with `Host` and `Connection: close`. */
export function simpleGet(path = "/", extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}Connection: close\r\n\r\n`;
}

/** Sends one good `GET path` on a new connection and returns its response (or `null`). */
export async function getOnce(port: number, path = "/", timeout = 3000): Promise<RawResponse | null> {
  const { responses } = await exchange(port, simpleGet(path), { responses: 1, timeout });
  return responses[0] ?? null;
}
