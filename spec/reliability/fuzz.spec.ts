// A seeded fuzz of the whole request path over real sockets: thousands of generated requests,
// mostly almost-valid (the interesting failures hide one byte from a good request), each checked
// for a well-formed answer below 500 or a clean close, no hang, and no error in the log; the
// server must keep answering a well-behaved client throughout. The seed is printed: FUZZ_SEED=<n>
// replays a run exactly, FUZZ_COUNT=<n> changes its length.
import t from "tap";
import { createHash } from "node:crypto";
import { Application, RequestHandler, createSignedValue, type HTTPServerOptions } from "../../core/index.ts";
import { exchange, getOnce, type Exchange } from "../helpers/raw-http.ts";
import { captureLog } from "../helpers/log.ts";
import { listen } from "../helpers/listen.ts";

const SEED = process.env["FUZZ_SEED"] !== undefined ? Number(process.env["FUZZ_SEED"]) >>> 0 : (Date.now() ^ (process.pid << 8)) >>> 0;
const COUNT = Number(process.env["FUZZ_COUNT"] ?? 2000);
const CONCURRENCY = 24;
const SECRET = "fuzz-secret";

/** mulberry32: a small, fast, seedable PRNG; the same seed gives the same requests. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  readonly #random: () => number;
  constructor(seed: number) { this.#random = prng(seed); }
  chance(p: number): boolean { return this.#random() < p; }
  int(lo: number, hi: number): number { return lo + Math.floor(this.#random() * (hi - lo + 1)); }
  pick<T>(items: readonly T[]): T { return items[Math.floor(this.#random() * items.length)]!; }
  bytes(n: number): string { return Array.from({ length: n }, () => String.fromCharCode(this.int(0, 255))).join(""); }
}

const SEGMENTS = ["a", "abc", "%C3%A9t%C3%A9", "%zz", "%", "%f", "%ff%fe", "%c0%af", "%ed%a0%80", "%00", "%0d%0a", "..", "%2e%2e", "%2f",
  "%252e", "<script>alert(1)</script>", "%3Cb%3E", "+", "%20", "~user", "a;b", "a,b", "'", "\"", "\\", "%5c", "%E2%80%AE", "%F0%9F%92%A9", "1234567890"];
const ARG_NAMES = ["q", "a", "_xsrf", "x", "%zz", "%ff", "", "a%00b", "__proto__", "constructor"];
const CONTENT_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data; boundary=XyZ", "multipart/form-data",
  "application/json", "application/json; charset=utf-8", "application/vnd.api+json", "text/plain", "garbage", ""];
const METHODS = ["GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "get", "BREW", "G\x00T", ""];
const PATHS = ["/", "/echo/$", "/echo/$/$", "/json", "/form", "/xsrf", "/stream", "/user/$", "/user/12", "/redirect", "/nope/$", "*",
  "http://fuzz/echo/$", "//echo/$", "/echo/$?q=$&a=$&a=$", "/echo/$?$=$", "/form?q=$"];
const HEADER_POOL: readonly ((g: Gen) => string)[] = [
  (g) => `Cookie: ${g.pick(["a=1", "s=" + signed(g), "s=" + signed(g).replace(/.$/, "0"), "_xsrf=" + g.pick(["2|00000000|abcd|1", "abc", "2|zz|zz|x", ""]),
    "a=\"x\\073y\"", "=", ";;;", "a=1; a=2", "path=/", "s=2|1:0|10:1300000000|1:s|4:YQ==|" + "0".repeat(64), g.bytes(8)])}`,
  (g) => `Accept: ${g.pick(["application/json", "text/html", "*/*", "application/json;q=0.5, text/html;q=0.9", "json", "a/b;q=x", ""])}`,
  (g) => `X-Forwarded-For: ${g.pick(["1.2.3.4", "bogus", "1.2.3.4, ::1", ",,,", "999.1.1.1"])}`,
  (g) => `X-Real-Ip: ${g.pick(["10.0.0.1", "::1", "nope"])}`,
  (g) => `If-None-Match: ${g.pick(["*", "\"x\"", "W/\"x\", \"y\"", ",", ""])}`,
  (g) => `X-XSRFToken: ${g.pick(["2|00000000|abcd|1", "x", "", "2|||"])}`,
  (g) => `Content-Encoding: ${g.pick(["gzip", "deflate", "br", "identity"])}`,
  (g) => `Accept-Encoding: ${g.pick(["gzip", "br, gzip", "*", "identity;q=0"])}`,
  (g) => `Range: ${g.pick(["bytes=0-1", "bytes=-5", "bytes=x"])}`,
  (g) => `X-Custom-${g.int(0, 99)}: ${g.pick(["v", "é", "a\tb", g.bytes(4)])}`,
];

function signed(g: Gen): string {
  return createSignedValue(SECRET, g.pick(["s", "t"]), g.pick(["user", "", "é"]), { clock: () => g.pick([Date.now() / 1000, 1_300_000_000]) });
}

function fill(g: Gen, template: string): string {
  return template.replace(/\$/g, () => g.pick(SEGMENTS));
}

function body(g: Gen, contentType: string): string {
  if (contentType.startsWith("application/x-www-form")) return `${g.pick(ARG_NAMES)}=${g.pick(SEGMENTS)}&${g.pick(ARG_NAMES)}=${g.pick(SEGMENTS)}`;
  if (contentType.startsWith("multipart")) {
    const part = g.chance(0.5)
      ? `--XyZ\r\nContent-Disposition: form-data; name="${g.pick(ARG_NAMES)}"\r\n\r\n${g.pick(SEGMENTS)}\r\n`
      : `--XyZ\r\nContent-Disposition: form-data; name="f"; filename="${g.pick(SEGMENTS)}"\r\nContent-Type: text/plain\r\n\r\n${g.bytes(g.int(0, 20))}\r\n`;
    return g.pick([part + "--XyZ--\r\n", part, "--XyZ\r\n\r\n", "--XyZ--", g.bytes(30)]);
  }
  if (contentType.includes("json")) return g.pick(['{"q":"a","n":1}', "[1,2]", "{", "null", '"\\ud800"', '{"__proto__":{"x":1}}', g.bytes(10)]);
  return g.bytes(g.int(0, 40));
}

/** One generated request, as bytes (latin1). */
function generate(g: Gen): string {
  const method = g.pick(METHODS);
  const target = fill(g, g.pick(PATHS));
  const version = g.chance(0.9) ? "HTTP/1.1" : g.pick(["HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "http/1.1", ""]);
  const lines = [`${method} ${target} ${version}`];
  if (g.chance(0.95)) lines.push("Host: fuzz");
  if (g.chance(0.03)) lines.push("Host: other");
  for (let i = g.int(0, 4); i > 0; i--) lines.push(g.pick(HEADER_POOL)(g));
  let payload = "";
  if (method !== "GET" || g.chance(0.1)) {
    const contentType = g.pick(CONTENT_TYPES);
    if (contentType !== "") lines.push(`Content-Type: ${contentType}`);
    payload = body(g, contentType);
    const framing = g.int(0, 9);
    if (framing <= 5) lines.push(`Content-Length: ${Buffer.byteLength(payload, "latin1")}`);
    else if (framing === 6) lines.push(`Content-Length: ${Buffer.byteLength(payload, "latin1") + g.int(1, 5)}`); // short body: a timeout
    else if (framing === 7) {
      lines.push("Transfer-Encoding: chunked");
      payload = `${payload.length.toString(16)}\r\n${payload}\r\n0\r\n\r\n`;
    } else if (framing === 8) {
      lines.push("Transfer-Encoding: chunked");
      payload = `${g.pick(["zz", "-1", "fffffffffffffffff", "1;", ""])}\r\n${payload}\r\n0\r\n\r\n`;
    }
  }
  if (g.chance(0.5)) lines.push("Connection: close");
  let request = `${lines.join("\r\n")}\r\n\r\n${payload}`;
  // One small corruption in about one request in six: where real parsers break.
  if (g.chance(0.15)) {
    const at = g.int(0, request.length);
    const kind = g.int(0, 3);
    if (kind === 0) request = request.slice(0, at) + g.pick(["\r", "\n", "\x00", "\r\n", " ", ":", "\x7f", "\xff"]) + request.slice(at);
    else if (kind === 1) request = request.slice(0, at);
    else if (kind === 2) request = request.slice(0, at) + request.slice(at + 1);
    else request = request.slice(0, at) + String.fromCharCode(request.charCodeAt(at) ^ (1 << g.int(0, 7))) + request.slice(at + 1);
  }
  return request;
}

// ---- The app: every input-parsing path a handler can reach ------------------------------------

class MainHandler extends RequestHandler {
  get(): void { this.write("main"); }
  post(): void { this.write(`got ${this.request.body.length}`); }
}

class EchoHandler extends RequestHandler {
  get(...groups: (string | undefined)[]): void {
    this.write({
      groups, q: this.getArgument("q", null), a: this.getArguments("a"), cookies: this.request.cookies,
      signed: this.getSignedCookie("s"), ip: this.request.remoteIp, protocol: this.request.protocol, host: this.request.hostName,
    });
  }
  post(...groups: (string | undefined)[]): void {
    this.write({ groups, args: this.request.arguments, files: Object.keys(this.request.files) });
  }
}

class JsonHandler extends RequestHandler {
  post(): void { this.write({ value: this.getJsonBody() ?? null }); }
  put(): void { this.post(); }
}

class XsrfHandler extends RequestHandler {
  get(): void { this.write(this.xsrfFormHtml()); }
  post(): void {
    this.checkXsrfCookie();
    this.write("ok");
  }
}

class StreamHandler extends RequestHandler {
  static override streamRequestBody = true;
  #hash = createHash("sha1");
  override dataReceived(chunk: Buffer): void { this.#hash.update(chunk); }
  post(): void { this.write(this.#hash.digest("hex")); }
  put(): void { this.post(); }
}

class UserHandler extends RequestHandler {
  get(kwargs: Record<string, string | undefined>): void { this.write({ id: kwargs["id"] ?? null }); }
}

class RedirectingHandler extends RequestHandler {
  get(): void { this.redirect(`/echo/${encodeURIComponent(this.getArgument("to", "x"))}`); }
}

const app = new Application([
  ["/", MainHandler], ["/echo/([^/]*)(?:/(.*))?", EchoHandler], ["/json", JsonHandler], ["/form", EchoHandler],
  ["/xsrf", XsrfHandler], ["/stream", StreamHandler], ["/user/(?<id>[0-9]+)", UserHandler], ["/redirect", RedirectingHandler],
], { cookieSecret: SECRET });

const SERVER: HTTPServerOptions = {
  headersTimeout: 300, bodyTimeout: 200, maxBodySize: 64 * 1024, maxHeaderSize: 8 * 1024, decompressRequest: true,
};

/** What is wrong with one exchange, or `null`. */
function problem(ex: Exchange, request: string): string | null {
  if (ex.timedOut) return "no answer and no close (hang)";
  if (ex.responses.length === 0) return ex.closed ? null : "no answer";
  const r = ex.responses[0]!;
  // RFC 9112 §6.1: a transfer coding other than chunked is a 501, the one 5xx a client can cause.
  const coding = /\r\nTransfer-Encoding:[ \t]*([^\r]*)\r\n/i.exec(request)?.[1]?.trim().toLowerCase();
  if (r.status === 501 && coding !== undefined && coding !== "chunked" && r.headers["connection"] === "close") return null;
  if (r.status >= 500) return `status ${r.status}: ${r.body.toString("latin1").slice(0, 200)}`;
  if (r.status < 100) return `status ${r.status}`;
  return null;
}

t.test(`fuzz: ${COUNT} generated requests (FUZZ_SEED=${SEED})`, async (t) => {
  t.comment(`replay with FUZZ_SEED=${SEED}`);
  const lines = captureLog(t);
  const { port } = await listen(t, app, SERVER);
  const g = new Gen(SEED);
  const requests = Array.from({ length: COUNT }, () => generate(g));
  const failures: string[] = [];
  const statuses = new Map<string, number>();
  let next = 0;
  const spent = new Map<string, number>();
  const worker = async (): Promise<void> => {
    while (next < COUNT) {
      const i = next++;
      const request = requests[i]!;
      const t0 = performance.now();
      let ex: Exchange;
      try {
        ex = await exchange(port, Buffer.from(request, "latin1"), { responses: 1, timeout: 15_000, bodyless: /^\s*HEAD /.test(request) ? [0] : [] });
      } catch (err) {
        // Refused or reset before the request could be sent: the server is not accepting.
        failures.push(`#${i} could not connect: ${(err as Error).message}`);
        continue;
      }
      const key = ex.responses[0] ? String(ex.responses[0].status) : ex.closed ? "closed" : "timeout";
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (process.env["FUZZ_TIMING"]) spent.set(key, (spent.get(key) ?? 0) + performance.now() - t0);
      const wrong = problem(ex, request);
      if (wrong !== null) failures.push(`#${i} ${wrong}\n  request: ${JSON.stringify(request).slice(0, 600)}`);
    }
  };
  // Meanwhile a well-behaved client keeps checking that the server still answers.
  let checks = 0;
  const checker = async (): Promise<void> => {
    while (next < COUNT) {
      const good = await getOnce(port, "/");
      checks++;
      if (good?.status !== 200) failures.push(`a good GET / during the fuzz got ${good?.status ?? "no answer"} (near request #${next})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await Promise.all([...Array.from({ length: CONCURRENCY }, worker), checker()]);
  const good = await getOnce(port, "/");
  t.equal(good?.status, 200, "a good request after the fuzz is answered");
  t.ok(checks > 0, `${checks} good requests answered during the fuzz`);
  if (spent.size > 0) t.comment(`ms spent: ${[...spent].map(([k, v]) => `${k}:${Math.round(v)}`).join(" ")}`);
  t.comment(`outcomes: ${[...statuses].sort().map(([k, v]) => `${k}×${v}`).join(" ")}`);
  t.same(failures.slice(0, 10), [], `every request answered below 500 or closed cleanly (${failures.length} failed; replay with FUZZ_SEED=${SEED})`);
  const errors = lines.filter((l) => l.level === "error").map((l) => l.message.split("\n")[0]);
  t.same(errors.slice(0, 10), [], `nothing logged as an error (${errors.length}; replay with FUZZ_SEED=${SEED})`);
  t.ok((statuses.get("200") ?? 0) > COUNT / 20, "a fair share of the requests were valid and served");
  t.ok([...statuses.keys()].filter((k) => k.startsWith("4")).length >= 4, "and many kinds of 4xx were provoked");
});
