// Response compression (compressResponse) over real sockets: gzip, brotli when the client
// prefers it, Vary: Accept-Encoding always, only compressible types above the threshold,
// streamed responses compressed as they flush; and decompressRequest for gzip bodies.
import t from "tap";
import { request } from "node:http";
import { brotliDecompressSync, createGunzip, gunzipSync, gzipSync } from "node:zlib";
import { Application } from "../../core/web/app.ts";
import { RequestHandler } from "../../core/web/handler.ts";
import { StaticFileHandler } from "../../handlers/static.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MIN_COMPRESS_LENGTH, chooseEncoding, isCompressible } from "../../core/http/compress.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog } from "../helpers/log.ts";
import { rawRequest } from "../handlers/raw-request.ts";
import type { Test } from "tap";

const PAGE = `<html><body>${"<p>typhoon compresses text</p>\n".repeat(200)}</body></html>`;

class PageHandler extends RequestHandler {
  get(): void {
    this.write(PAGE);
  }
}

class SmallHandler extends RequestHandler {
  get(): void {
    this.write("x".repeat(MIN_COMPRESS_LENGTH - 1));
  }
}

class PngHandler extends RequestHandler {
  get(): void {
    this.setHeader("Content-Type", "image/png");
    this.write(Buffer.alloc(10_000, 7));
  }
}

let gate: () => void = () => undefined;

class StreamHandler extends RequestHandler {
  async get(): Promise<void> {
    this.setHeader("Content-Type", "text/plain");
    this.write("part one;");
    await this.flush();
    // The spec opens the gate only once it has decoded part one: proof it was sent compressed, early.
    await new Promise<void>((resolve) => { gate = resolve; });
    this.write("part two");
    await this.flush();
    this.finish(";end");
  }
}

class FormHandler extends RequestHandler {
  post(): void {
    this.write({ name: this.getBodyArgument("name"), size: this.request.body.length });
  }
}

async function serve(t: Test, compressResponse = true): Promise<string> {
  captureLog(t);
  const app = new Application([
    ["/page", PageHandler], ["/small", SmallHandler], ["/png", PngHandler], ["/stream", StreamHandler], ["/form", FormHandler],
  ], { compressResponse });
  const { port } = await listen(t, app, { decompressRequest: true });
  return `http://127.0.0.1:${port}`;
}

t.test("chooseEncoding: the highest q wins, ties go to brotli, q=0 refuses, * stands for the rest", async (t) => {
  t.equal(chooseEncoding("gzip, deflate, br"), "br");
  t.equal(chooseEncoding("gzip"), "gzip");
  t.equal(chooseEncoding("br;q=0.1, gzip"), "gzip");
  t.equal(chooseEncoding("br;q=1.0, gzip;q=0.8"), "br");
  t.equal(chooseEncoding("gzip;q=0, br;q=0"), null);
  t.equal(chooseEncoding("identity"), null);
  t.equal(chooseEncoding(undefined), null);
  t.equal(chooseEncoding("*"), "br");
  t.equal(chooseEncoding("br;q=0, *"), "gzip");
  t.ok(isCompressible("text/html; charset=UTF-8"));
  t.ok(isCompressible("application/json; charset=UTF-8"));
  t.ok(isCompressible("application/ld+json"));
  t.notOk(isCompressible("image/png"));
});

t.test("gzip: Content-Encoding, Vary, Content-Length of the compressed body, and it decodes to the page", async (t) => {
  const base = await serve(t);
  const r = await rawRequest(base, "/page", { headers: { "Accept-Encoding": "gzip" } });
  t.equal(r.status, 200);
  t.equal(r.headers["content-encoding"], "gzip");
  t.equal(r.headers.vary, "Accept-Encoding");
  t.equal(r.headers["content-length"], String(r.body.length));
  t.ok(r.body.length < PAGE.length / 5, `compressed to ${r.body.length} of ${PAGE.length} bytes`);
  t.equal(gunzipSync(r.body).toString(), PAGE);
});

t.test("brotli when the client prefers it (or ties); gzip when it prefers gzip", async (t) => {
  const base = await serve(t);
  const br = await rawRequest(base, "/page", { headers: { "Accept-Encoding": "gzip, deflate, br" } });
  t.equal(br.headers["content-encoding"], "br");
  t.equal(brotliDecompressSync(br.body).toString(), PAGE);
  const gz = await rawRequest(base, "/page", { headers: { "Accept-Encoding": "br;q=0.5, gzip;q=0.9" } });
  t.equal(gz.headers["content-encoding"], "gzip");
});

t.test("not compressed: no Accept-Encoding, a small body, an image; Vary is sent all the same", async (t) => {
  const base = await serve(t);
  for (const [path, headers] of [
    ["/page", {}], ["/small", { "Accept-Encoding": "gzip" }], ["/png", { "Accept-Encoding": "gzip, br" }],
  ] as const) {
    const r = await rawRequest(base, path, { headers });
    t.equal(r.headers["content-encoding"], undefined, `${path} is sent as it is`);
    t.equal(r.headers.vary, "Accept-Encoding", `${path} has Vary`);
    t.equal(r.headers["content-length"], String(r.body.length));
  }
});

t.test("with compressResponse off nothing is compressed and no Vary is added", async (t) => {
  const base = await serve(t, false);
  const r = await rawRequest(base, "/page", { headers: { "Accept-Encoding": "gzip, br" } });
  t.equal(r.headers["content-encoding"], undefined);
  t.equal(r.headers.vary, undefined);
  t.equal(r.text(), PAGE);
});

t.test("the ETag still turns a repeat request into a 304", async (t) => {
  const base = await serve(t);
  const first = await rawRequest(base, "/page", { headers: { "Accept-Encoding": "gzip" } });
  const again = await rawRequest(base, "/page", { headers: { "Accept-Encoding": "gzip", "If-None-Match": first.headers.etag! } });
  t.equal(again.status, 304);
  t.equal(again.body.length, 0);
});

t.test("a streamed response is compressed as it flushes: the client decodes each part before the next is written", async (t) => {
  const base = await serve(t);
  const url = new URL(`${base}/stream`);
  const text = await new Promise<string>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: "/stream", headers: { "Accept-Encoding": "gzip" }, agent: false }, (res) => {
      t.equal(res.headers["content-encoding"], "gzip");
      t.equal(res.headers["content-length"], undefined, "no length for a stream");
      t.equal(res.headers["transfer-encoding"], "chunked");
      let decoded = "";
      const gunzip = createGunzip();
      gunzip.on("data", (d: Buffer) => {
        decoded += d.toString();
        if (decoded === "part one;") gate();
      });
      gunzip.on("end", () => resolve(decoded));
      gunzip.on("error", reject);
      res.pipe(gunzip);
    });
    req.setTimeout(5000, () => req.destroy(new Error("the first part never arrived decoded")));
    req.on("error", reject);
    req.end();
  });
  t.equal(text, "part one;part two;end");
});

t.test("decompressRequest: a gzip form body is parsed; a corrupt one is a 400", async (t) => {
  const base = await serve(t);
  const body = gzipSync("name=typhoon&x=" + "y".repeat(5000));
  const r = await rawRequest(base, "/form", {
    method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip" }, body,
  });
  t.equal(r.status, 200);
  t.same(JSON.parse(r.text()), { name: "typhoon", size: 5015 });
  const bad = await rawRequest(base, "/form", {
    method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip" }, body: "not gzip",
  });
  t.equal(bad.status, 400);
});

t.test("static files: a large text file is streamed gzip'd, a small one too (Tornado's test_gzip_static)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "typhoon-compress-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "big.txt"), PAGE);
  writeFileSync(join(dir, "small.txt"), "tiny");
  captureLog(t);
  const app = new Application([["/s/(.*)", StaticFileHandler, { path: dir }]], { compressResponse: true });
  const { port } = await listen(t, app);
  const base = `http://127.0.0.1:${port}`;
  const big = await rawRequest(base, "/s/big.txt", { headers: { "Accept-Encoding": "gzip" } });
  t.equal(big.headers["content-encoding"], "gzip");
  t.equal(gunzipSync(big.body).toString(), PAGE);
  const small = await rawRequest(base, "/s/small.txt", { headers: { "Accept-Encoding": "gzip" } });
  t.equal(small.headers["content-encoding"], "gzip");
  t.equal(gunzipSync(small.body).toString(), "tiny");
  const ranged = await rawRequest(base, "/s/big.txt", { headers: { "Accept-Encoding": "gzip", Range: "bytes=0-99" } });
  t.equal(ranged.status, 206);
  t.equal(ranged.headers["content-encoding"], undefined, "a range is sent as bytes of the file");
  t.equal(ranged.text(), PAGE.slice(0, 100));
});
