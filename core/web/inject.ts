/**
 * `app.inject()`: one request through real node:http on both ends — an `http.Server` and an
 * `http.request` client — joined by an in-memory duplex pair instead of a socket. The request is
 * parsed, routed and answered exactly as over the network, minus the kernel.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { Duplex } from "node:stream";

/** A request for `app.inject()`. */
export interface InjectOptions {
  method?: string;
  /** Path and query, e.g. `/users/7?full=1`. */
  url: string;
  headers?: Record<string, string | string[]>;
  /** A string, bytes, or an object sent as JSON. */
  body?: string | Uint8Array | object;
  /** The client address the app sees (default `127.0.0.1`). */
  remoteAddress?: string;
}

/** The response of `app.inject()`. */
export interface InjectResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body decoded as UTF-8. */
  text(): string;
  /** The body parsed as JSON. */
  json<T = unknown>(): T;
}

/** One end of an in-memory connection; what is written to one end is read from the other. */
class MemorySocket extends Duplex {
  peer: MemorySocket | null = null;
  readonly remoteAddress: string;
  readonly remotePort = 0;
  constructor(remoteAddress: string) {
    super();
    this.remoteAddress = remoteAddress;
  }
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.peer?.push(chunk);
    callback();
  }
  override _final(callback: () => void): void {
    this.peer?.push(null);
    callback();
  }
  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    const peer = this.peer;
    this.peer = null;
    if (peer !== null && !peer.destroyed) peer.destroy();
    callback(err);
  }
  // The parts of net.Socket that node:http calls on its sockets.
  setTimeout(): this { return this; }
  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
}

/** Runs one request against `listener` in-process. */
export function inject(listener: (req: IncomingMessage, res: ServerResponse) => void, options: InjectOptions): Promise<InjectResponse> {
  const server = createServer(listener);
  const clientEnd = new MemorySocket("127.0.0.1");
  const serverEnd = new MemorySocket(options.remoteAddress ?? "127.0.0.1");
  clientEnd.peer = serverEnd;
  serverEnd.peer = clientEnd;
  server.emit("connection", serverEnd);

  let body: Buffer | undefined;
  const headers: Record<string, string | string[]> = { host: "127.0.0.1", ...options.headers };
  if (options.body !== undefined) {
    if (typeof options.body === "string") body = Buffer.from(options.body);
    else if (options.body instanceof Uint8Array) body = Buffer.from(options.body);
    else {
      body = Buffer.from(JSON.stringify(options.body));
      headers["content-type"] ??= "application/json";
    }
    headers["content-length"] ??= String(body.length);
  }
  return new Promise((resolve, reject) => {
    const req = request({
      method: options.method ?? "GET",
      path: options.url,
      headers,
      createConnection: () => clientEnd as unknown as import("node:net").Socket,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const data = Buffer.concat(chunks);
        clientEnd.destroy();
        server.close();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: data,
          text: () => data.toString("utf8"),
          json: <T>() => JSON.parse(data.toString("utf8")) as T,
        });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}
