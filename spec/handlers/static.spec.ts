// StaticFileHandler over real sockets: Tornado's StaticFileTest cases (ranges, 304s, HEAD,
// traversal, default filename, versioned URLs), symlinks out of the root, and streaming a
// large file with backpressure rather than reading it whole.
import t from "tap";
import type { Test } from "tap";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Application } from "../../core/web/app.ts";
import { RequestHandler } from "../../core/web/handler.ts";
import { StaticFileHandler, byteRange } from "../../handlers/static.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog } from "../helpers/log.ts";
import { rawRequest } from "./raw-request.ts";
import { collect, open } from "../helpers/raw-http.ts";
import { waitFor, waitUntilStable } from "../helpers/wait.ts";

const ROOT = fileURLToPath(new URL("../fixtures/static/root/", import.meta.url));
const ROBOTS = "User-agent: *\nDisallow: /\n";
const ROBOTS_MD5 = createHash("md5").update(ROBOTS).digest("hex");

class StaticUrlHandler extends RequestHandler {
  get(path: string): void {
    this.write(this.staticUrl(path));
  }
}

async function serve(t: Test): Promise<string> {
  captureLog(t);
  const app = new Application([
    ["/static_url/(.*)", StaticUrlHandler],
    ["/default/(.*)", StaticFileHandler, { path: ROOT, defaultFilename: "index.html" }],
  ], { staticPath: ROOT });
  const { port } = await listen(t, app);
  return `http://127.0.0.1:${port}`;
}

t.test("range bytes=0-9 of the 26-byte robots.txt is a 206 with bytes 0-9/26", async (t) => {
  const base = await serve(t);
  const r = await rawRequest(base, "/static/robots.txt", { headers: { Range: "bytes=0-9" } });
  t.equal(r.status, 206);
  t.equal(r.text(), "User-agent");
  t.equal(r.headers["content-length"], "10");
  t.equal(r.headers["content-range"], "bytes 0-9/26");
});

t.test("Tornado's range table: full file, past the end, suffixes, junk", async (t) => {
  const base = await serve(t);
  const cases: [string, number, string, string | undefined][] = [
    ["bytes=0-", 200, ROBOTS, undefined],
    ["bytes=0-10000000", 200, ROBOTS, undefined],
    ["bytes=1-10000000", 206, ROBOTS.slice(1), "bytes 1-25/26"],
    ["bytes=22-", 206, ROBOTS.slice(22), "bytes 22-25/26"],
    ["bytes=-4", 206, ROBOTS.slice(-4), "bytes 22-25/26"],
    ["bytes=-1000000", 200, ROBOTS, undefined],
    ["bytes=asdf", 200, ROBOTS, undefined],
    ["bytes=0-1,5-6", 200, ROBOTS, undefined],
  ];
  for (const [range, status, body, contentRange] of cases) {
    const r = await rawRequest(base, "/static/robots.txt", { headers: { Range: range } });
    t.equal(r.status, status, `${range} → ${status}`);
    t.equal(r.text(), body, `${range} body`);
    t.equal(r.headers["content-length"], String(body.length), `${range} Content-Length`);
    t.equal(r.headers["content-range"], contentRange, `${range} Content-Range`);
  }
});

t.test("unsatisfiable ranges (bytes=-0, start at the end, end before start) are 416 with bytes */26", async (t) => {
  const base = await serve(t);
  for (const range of ["bytes=-0", "bytes=26", "bytes=26-30", "bytes=10-3"]) {
    const r = await rawRequest(base, "/static/robots.txt", { headers: { Range: range } });
    t.equal(r.status, 416, range);
    t.equal(r.headers["content-range"], "bytes */26", range);
    t.equal(r.body.length, 0, `${range} has no body`);
  }
  t.same(byteRange("bytes=-0", 26), "unsatisfiable");
});

t.test("HEAD sends the headers of GET and no body, with or without a range", async (t) => {
  const base = await serve(t);
  const head = await rawRequest(base, "/static/robots.txt", { method: "HEAD" });
  t.equal(head.status, 200);
  t.equal(head.body.length, 0);
  t.equal(head.headers["content-length"], "26");
  t.equal(head.headers.etag, `"${ROBOTS_MD5}"`);
  t.equal(head.headers["content-type"], "text/plain");
  const ranged = await rawRequest(base, "/static/robots.txt", { method: "HEAD", headers: { Range: "bytes=1-4" } });
  t.equal(ranged.status, 206);
  t.equal(ranged.body.length, 0);
  t.equal(ranged.headers["content-length"], "4");
  t.equal(ranged.headers["content-range"], "bytes 1-4/26");
});

t.test("the ETag is the MD5 of the content, and If-None-Match answers 304 (before any range)", async (t) => {
  const base = await serve(t);
  const first = await rawRequest(base, "/static/robots.txt");
  t.equal(first.headers.etag, `"${ROBOTS_MD5}"`);
  t.equal(first.headers["accept-ranges"], "bytes");
  const again = await rawRequest(base, "/static/robots.txt", { headers: { "If-None-Match": first.headers.etag! } });
  t.equal(again.status, 304);
  t.equal(again.body.length, 0);
  t.equal(again.headers.etag, first.headers.etag);
  const ranged = await rawRequest(base, "/static/robots.txt", { headers: { "If-None-Match": first.headers.etag!, Range: "bytes=1-4" } });
  t.equal(ranged.status, 304, "a matching ETag wins over Range");
  const other = await rawRequest(base, "/static/robots.txt", { headers: { "If-None-Match": '"nope"' } });
  t.equal(other.status, 200);
});

t.test("If-Modified-Since: 304 when not modified, 200 before; If-None-Match decides when both are sent", async (t) => {
  const base = await serve(t);
  const first = await rawRequest(base, "/static/robots.txt");
  const lastModified = first.headers["last-modified"]!;
  t.ok(lastModified);
  t.equal((await rawRequest(base, "/static/robots.txt", { headers: { "If-Modified-Since": lastModified } })).status, 304);
  t.equal((await rawRequest(base, "/static/robots.txt", { headers: { "If-Modified-Since": "Sat, 01 Jan 1900 00:00:00 GMT" } })).status, 200,
    "a date before the epoch is not a 304");
  const both = await rawRequest(base, "/static/robots.txt", { headers: { "If-Modified-Since": lastModified, "If-None-Match": '"stale"' } });
  t.equal(both.status, 200, "a changed ETag is a 200 even when the date says not modified");
});

t.test("traversal attempts are 403: .., encoded .., absolute paths, NUL bytes, backslashes, symlinks out", async (t) => {
  const base = await serve(t);
  for (const path of [
    "/static/../outside.txt", "/static/%2E%2E/outside.txt", "/static/%2e%2e%2foutside.txt", "/static/dir/../../outside.txt",
    "/static//etc/passwd", "/static/%2Fetc%2Fpasswd", "/static/robots.txt%00", "/static/..%5Coutside.txt", "/static/link-out.txt",
  ]) {
    const r = await rawRequest(base, path);
    t.equal(r.status, 403, path);
    t.notMatch(r.text(), /outside the root\n/, `${path} does not leak the file`);
  }
  const inside = await rawRequest(base, "/static/link-in.txt");
  t.equal(inside.status, 200, "a symlink that stays in the root is served");
  t.equal(inside.text(), ROBOTS);
});

t.test("missing is 404, a directory is 403 without defaultFilename", async (t) => {
  const base = await serve(t);
  t.equal((await rawRequest(base, "/static/blarg")).status, 404);
  t.equal((await rawRequest(base, "/static/dir")).status, 403);
  t.equal((await rawRequest(base, "/static/dir/")).status, 403);
});

t.test("defaultFilename serves index.html for a directory and redirects the slash-less path", async (t) => {
  const base = await serve(t);
  const r = await rawRequest(base, "/default/dir/");
  t.equal(r.status, 200);
  t.equal(r.text(), "this is the index\n");
  const redirect = await rawRequest(base, "/default/dir");
  t.equal(redirect.status, 301);
  t.equal(redirect.headers.location, "/default/dir/");
});

t.test("staticUrl adds ?v=<md5>, and ?v= URLs are cached for ten years", async (t) => {
  const base = await serve(t);
  const url = (await rawRequest(base, "/static_url/robots.txt")).text();
  t.equal(url, `/static/robots.txt?v=${ROBOTS_MD5}`);
  const r = await rawRequest(base, url);
  t.equal(r.status, 200);
  t.match(r.headers["cache-control"], /max-age=315360000/);
  t.ok(Date.parse(r.headers.expires!) > Date.now() + 9 * 365 * 86_400_000, "Expires is years ahead");
  const plain = await rawRequest(base, "/static/robots.txt");
  t.equal(plain.headers["cache-control"], undefined, "no long cache without ?v=");
  t.equal((await rawRequest(base, "/static_url/missing.txt")).text(), "/static/missing.txt", "no version for a missing file");
});

t.test("the staticPath setting also serves /robots.txt; types come from the extension; POST is 405", async (t) => {
  const base = await serve(t);
  const robots = await rawRequest(base, "/robots.txt");
  t.equal(robots.status, 200);
  t.equal(robots.text(), ROBOTS);
  const xml = await rawRequest(base, "/static/sample.xml");
  t.equal(xml.headers["content-type"], "application/xml");
  t.equal((await rawRequest(base, "/static/robots.txt", { method: "POST" })).status, 405);
});

t.test("a changed file gets a new ETag and version", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "typhoon-static-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "a.txt");
  writeFileSync(file, "one");
  captureLog(t);
  const app = new Application([["/s/(.*)", StaticFileHandler, { path: dir }]], { staticPath: dir });
  const { port } = await listen(t, app);
  const base = `http://127.0.0.1:${port}`;
  const first = await rawRequest(base, "/s/a.txt");
  t.equal(app.staticUrl("a.txt"), `/static/a.txt?v=${createHash("md5").update("one").digest("hex")}`);
  writeFileSync(file, "two!");
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  const second = await rawRequest(base, "/s/a.txt");
  t.equal(second.text(), "two!");
  t.not(second.headers.etag, first.headers.etag);
  t.equal(app.staticUrl("a.txt"), `/static/a.txt?v=${createHash("md5").update("two!").digest("hex")}`);
});

t.test("a large file streams in chunks with backpressure: a reader that stops holds the server's reads back", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "typhoon-static-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const size = 32 * 1024 * 1024;
  const content = Buffer.alloc(size, "abcdefgh");
  writeFileSync(join(dir, "big.bin"), content);
  captureLog(t);
  const app = new Application([["/s/(.*)", StaticFileHandler, { path: dir }]]);
  const { port } = await listen(t, app);
  const base = `http://127.0.0.1:${port}`;
  // A full read returns every byte, in order.
  const whole = await rawRequest(base, "/s/big.bin");
  t.equal(whole.status, 200);
  t.equal(whole.headers["content-length"], String(size));
  t.ok(whole.body.equals(content), "the body is the file");
  // A client that reads nothing: the handler must stop reading the file once the socket is full.
  const app2 = new Application([["/s/(.*)", CountingStatic, { path: dir }]]);
  const { port: port2 } = await listen(t, app2);
  CountingStatic.written = 0;
  const socket = await open(port2);
  t.teardown(() => socket.destroy());
  socket.pause();
  socket.write("GET /s/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  await waitFor(() => CountingStatic.written > 0, { what: "the first chunk" });
  // No event says "the server stopped writing": wait until the count stops moving for a while.
  const held = await waitUntilStable(() => CountingStatic.written, { stableFor: 500, timeout: 60_000, what: "the writes to stall" });
  t.ok(held > 0, "streaming started");
  t.ok(held < size / 2, `the handler wrote ${held} of ${size} bytes to a client that reads nothing`);
  t.notOk(socket.destroyed, "the connection is still open: the handler is waiting, not done or failed");
  // Reading again releases the stream: the rest arrives, whole and in order.
  const rest = collect(socket, { timeout: 60_000 });
  socket.resume();
  const ex = await rest;
  t.equal(ex.responses[0]?.status, 200);
  t.ok(ex.responses[0]?.body.equals(content), "after the pause the client gets the whole file");
  t.equal(CountingStatic.written, size, "and the handler wrote every byte once");
});

class CountingStatic extends StaticFileHandler {
  static written = 0;
  override write(chunk: string | Uint8Array | object): void {
    if (chunk instanceof Uint8Array) CountingStatic.written += chunk.length;
    super.write(chunk);
  }
}

t.test("staticUrlPrefix moves the static route and the URLs staticUrl() makes", async (t) => {
  captureLog(t);
  const app = new Application([["/static_url/(.*)", StaticUrlHandler]], { staticPath: ROOT, staticUrlPrefix: "/assets/v1/" });
  const { port } = await listen(t, app);
  const base = `http://127.0.0.1:${port}`;
  const r = await rawRequest(base, "/assets/v1/robots.txt");
  t.equal(r.status, 200);
  t.equal(r.text(), ROBOTS, "the file is served under the prefix");
  t.equal((await rawRequest(base, "/static/robots.txt")).status, 404, "and no longer under /static/");
  t.equal(app.staticUrl("robots.txt"), `/assets/v1/robots.txt?v=${ROBOTS_MD5}`);
  t.equal((await rawRequest(base, "/static_url/robots.txt")).text(), `/assets/v1/robots.txt?v=${ROBOTS_MD5}`, "handler.staticUrl too");
  const versioned = await rawRequest(base, `/assets/v1/robots.txt?v=${ROBOTS_MD5}`);
  t.equal(versioned.text(), ROBOTS, "the URL staticUrl() made is served");
});
