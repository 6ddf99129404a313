// Static-file traversal: over 60 known payloads (dot-segments raw, encoded, double-encoded and
// overlong, backslashes, absolute paths, NUL bytes, symlinks out of the root) sent on raw
// sockets, so nothing normalizes them on the way. None may read a byte from outside the root;
// each is a 400, 403 or 404, and files inside the root are still served.
import t from "tap";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Application, RequestHandler } from "../../core/index.ts";
import { StaticFileHandler } from "../../handlers/static.ts";
import { exchange } from "../helpers/raw-http.ts";
import { captureLog } from "../helpers/log.ts";
import { listen } from "../helpers/listen.ts";

const SECRET = "TOP-SECRET-OUTSIDE-THE-ROOT";

const base = mkdtempSync(join(tmpdir(), "typhoon-traversal-"));
const root = join(base, "public");
mkdirSync(join(root, "sub"), { recursive: true });
writeFileSync(join(base, "secret.txt"), SECRET);
writeFileSync(join(root, "a.txt"), "file a");
writeFileSync(join(root, "sub", "b.txt"), "file b");
symlinkSync(join(base, "secret.txt"), join(root, "link-out"));
symlinkSync(base, join(root, "dir-link"));
symlinkSync(join(root, "a.txt"), join(root, "link-in"));
t.teardown(() => rmSync(base, { recursive: true, force: true }));

const PAYLOADS = [
  // dot-segments, raw and encoded in every mix
  "../secret.txt", "..%2fsecret.txt", "..%2Fsecret.txt", "%2e%2e/secret.txt", "%2e%2e%2fsecret.txt", "%2E%2E%2Fsecret.txt",
  ".%2e/secret.txt", "%2e./secret.txt", ".%2e%2fsecret.txt", "./../secret.txt", "sub/../../secret.txt", "sub/..%2f..%2fsecret.txt",
  "sub%2f..%2f..%2fsecret.txt", "sub/%2e%2e/%2e%2e/secret.txt", "a.txt/../../secret.txt", "..", "%2e%2e", "%2e%2e/", "../",
  "../public/../secret.txt", "sub/../sub/../../secret.txt",
  // double-encoded (must decode once only)
  "%252e%252e%252fsecret.txt", "..%252fsecret.txt", "%252e%252e/secret.txt", "%25%32%65%25%32%65/secret.txt",
  // backslashes, raw and encoded (Windows separators)
  "..\\secret.txt", "..%5csecret.txt", "..%5Csecret.txt", "%2e%2e%5csecret.txt", "..%5c..%5csecret.txt", "sub\\..\\..\\secret.txt",
  "C:\\windows\\win.ini", "C:%5cwindows%5cwin.ini", "\\\\server\\share\\secret.txt", "%5c%5cserver%5cshare",
  // absolute paths
  "/etc/passwd", "%2fetc%2fpasswd", "%2Fetc/passwd", "//etc/passwd", "/%2e%2e/secret.txt", `${base.replace(/^\//, "%2f")}/secret.txt`,
  `%2f${encodeURIComponent(base.slice(1))}%2fsecret.txt`, "..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
  "../../../../../../../../etc/passwd", "..%2f%2e%2e%2f..%2f..%2f..%2fetc%2fpasswd", "file:///etc/passwd",
  // NUL bytes and other controls
  "..%00/secret.txt", "a.txt%00.png", "%00", "..%00", "secret.txt%00", "..%0d%0a/secret.txt", "..%09/secret.txt",
  // overlong and lookalike encodings of . and /
  "%c0%ae%c0%ae/secret.txt", "%c0%ae%c0%ae%c0%afsecret.txt", "..%c0%afsecret.txt", "%e0%80%ae%e0%80%ae/secret.txt",
  "..%c1%9csecret.txt", "%u002e%u002e/secret.txt", "..%u2215secret.txt", "..%e2%88%95secret.txt", "..%ef%bc%8fsecret.txt",
  "%ef%bc%8e%ef%bc%8e/secret.txt",
  // oddities
  "....//secret.txt", ".../secret.txt", "..;/secret.txt", "sub/..;/..;/secret.txt", "%2e%2e;/secret.txt",
  // symlinks out of the root
  "link-out", "dir-link/secret.txt", "dir-link%2fsecret.txt", "sub/../link-out", "dir-link/../secret.txt",
];

t.test(`${PAYLOADS.length} traversal payloads never leave the static root`, async (t) => {
  t.ok(PAYLOADS.length >= 60, `${PAYLOADS.length} payloads`);
  captureLog(t);
  const app = new Application([["/files/(.*)", StaticFileHandler, { path: root }]], { staticPath: root });
  const { port } = await listen(t, app);
  const seen = new Map<number, number>();
  for (const prefix of ["/static/", "/files/"]) {
    for (const payload of PAYLOADS) {
      for (const suffix of ["", "?v=1"]) {
        const target = `${prefix}${payload}${suffix}`;
        const ex = await exchange(port, Buffer.from(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, "latin1"));
        const status = ex.responses[0]?.status ?? 0;
        seen.set(status, (seen.get(status) ?? 0) + 1);
        // A request line the parser refuses (raw controls) is a 400 without a response body.
        if (![400, 403, 404].includes(status)) t.fail(`${target}: status ${status}`);
        if (ex.raw.includes(SECRET) || /root:.*:0:0:/.test(ex.raw)) t.fail(`${target}: LEAKED a file outside the root`);
      }
    }
  }
  t.comment(`statuses: ${[...seen].map(([s, n]) => `${s}×${n}`).join(" ")}`);
  t.equal([...seen.values()].reduce((a, b) => a + b, 0), PAYLOADS.length * 4, "every payload was answered with 400, 403 or 404");
  t.ok((seen.get(403) ?? 0) > PAYLOADS.length, "most escapes are recognised as such (403)");
});

t.test("an absolute-form target cannot smuggle dot-segments past the route", async (t) => {
  captureLog(t);
  const { port } = await listen(t, new Application([], { staticPath: root }));
  for (const target of ["http://x/static/../secret.txt", "http://x/static/%2e%2e/secret.txt", "http://x/static/..%2fsecret.txt"]) {
    const ex = await exchange(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    t.ok([400, 403, 404].includes(ex.responses[0]?.status ?? 0), `${target}: ${ex.responses[0]?.status}`);
    t.notOk(ex.raw.includes(SECRET), `${target}: nothing leaked`);
  }
});

t.test("files inside the root, and symlinks that stay inside, are still served", async (t) => {
  const { port } = await listen(t, new Application([], { staticPath: root }));
  for (const [path, body] of <[string, string][]>[["a.txt", "file a"], ["sub/b.txt", "file b"], ["sub/../a.txt", "file a"], ["link-in", "file a"], ["%61.txt", "file a"]]) {
    const ex = await exchange(port, `GET /static/${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    t.equal(ex.responses[0]?.status, 200, path);
    t.equal(ex.responses[0]?.body.toString(), body, path);
  }
});

/** What the payloads are for: a handler that trusts the path does leak. */
class NaiveStatic extends RequestHandler {
  get(path: string): void {
    try {
      this.write(readFileSync(resolve(root, path)));
    } catch {
      this.setStatus(404);
    }
  }
}

t.test("the same payloads do read outside the root through a handler that trusts the path", async (t) => {
  const { port } = await listen(t, new Application([["/naive/(.*)", NaiveStatic]]));
  let leaked = 0;
  for (const payload of PAYLOADS) {
    const ex = await exchange(port, Buffer.from(`GET /naive/${payload} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, "latin1"));
    if (ex.raw.includes(SECRET)) leaked++;
  }
  t.ok(leaked >= 20, `${leaked} payloads leak the secret through the naive handler: the check above can fail`);
});
