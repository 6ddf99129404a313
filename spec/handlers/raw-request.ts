// A spec helper: one HTTP request over a real socket with node:http, with the path sent exactly
// as given (fetch would normalize "..", which the traversal specs must send as they are).
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";

/** What a raw request returned. */
export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  text(): string;
}

/** Sends one request to `base` (`http://127.0.0.1:port`) with `path` untouched. */
export function rawRequest(base: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: options.method ?? "GET", headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: () => body.toString("utf8") });
      });
      res.on("error", reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`timed out: ${path}`)));
    req.on("error", reject);
    req.end(options.body);
  });
}
