// Security under hostile input, over real sockets: header and cookie injection refused, cookie
// parsing that cannot be abused, signed cookies rejected when tampered with, expired, moved to
// another name or signed with an unknown key version, XSRF tokens compared in constant time,
// error pages that never echo input unescaped, and no stack traces without serveTraceback.
import t, { type Test } from "tap";
import { createRequire, syncBuiltinESMExports } from "node:module";
import {
  Application, HTTPError, RequestHandler, createSignedValue, createXsrfToken, xsrfTokensMatch, type AppSettings,
} from "../../core/index.ts";
import { exchange, getOnce } from "../helpers/raw-http.ts";
import { captureLog } from "../helpers/log.ts";
import { listen } from "../helpers/listen.ts";

const request = (path: string, headers = ""): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`;

// ---- Header and cookie injection ------------------------------------------------------------

class HeaderEcho extends RequestHandler {
  get(how: string): void {
    const v = this.getArgument("v");
    if (how === "set") this.setHeader("X-Echo", v);
    else if (how === "add") this.addHeader("X-Echo", v);
    else if (how === "name") this.setHeader(v, "1");
    else if (how === "redirect") this.redirect(`/next?to=${v}`);
    else if (how === "cookie") this.setCookie("c", v);
    else if (how === "cookie-name") this.setCookie(v, "1");
    else if (how === "status") this.setStatus(200, v);
    this.write("echoed");
  }
}

t.test("header and cookie values carrying CR/LF or controls are refused (a 500), a status reason replaced by Unknown: nothing injected", async (t) => {
  captureLog(t);
  const { port } = await listen(t, new Application([["/(\\w[\\w-]*)", HeaderEcho]]));
  // U+010A and U+010D end in the bytes of LF and CR: a writer that truncated to latin1 would inject.
  const payloads = ["a%0d%0aX-Injected:%201", "a%0aX-Injected:%201", "a%0dX-Injected:%201", "a%7fb", "a%0d%0a%0d%0a<html>injected",
    "a%C4%8AX-Injected:%201", "a%C4%8DX-Injected:%201"];
  for (const how of ["set", "add", "redirect", "cookie", "status"]) {
    for (const payload of payloads) {
      const ex = await exchange(port, request(`/${how}?v=${payload}`));
      const res = ex.responses[0];
      // A cookie value with DEL is quoted and octal-escaped (Python's Morsel), not refused.
      if (how === "status") {
        // A reason a status line cannot carry becomes "Unknown" (Tornado's set_status), not a 500.
        t.equal(res?.status, 200, `${how} ${payload}: the status is kept`);
        t.equal(res?.reason, "Unknown", `${how} ${payload}: the reason is replaced`);
      } else if (!(how === "cookie" && payload === "a%7fb")) t.equal(res?.status, 500, `${how} ${payload}: refused with 500`);
      t.notMatch(ex.raw, /X-Injected|injected/i, `${how} ${payload}: nothing injected`);
      t.notMatch(res?.head ?? "", /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/, `${how} ${payload}: no control byte in the head`);
    }
  }
  for (const name of ["X%3AA", "X%20A", "X%0d%0aA", "", "A%40B"]) {
    const res = await getOnce(port, `/name?v=${name}`);
    t.equal(res?.status, 500, `header name ${JSON.stringify(decodeURIComponent(name))}: 500`);
  }
  for (const name of ["a%3Db", "a%3Bb", "a%20b", "path", "Expires", "a%0d%0ab"]) {
    const res = await getOnce(port, `/cookie-name?v=${name}`);
    t.equal(res?.status, 500, `cookie name ${JSON.stringify(decodeURIComponent(name))}: 500`);
  }
  const ok = await getOnce(port, "/set?v=plain%20value");
  t.equal(ok?.headers["x-echo"], "plain value", "a clean value goes through");
});

t.test("a cookie value with ; , \" or \\ is quoted, so it cannot add attributes", async (t) => {
  const { port } = await listen(t, new Application([["/(\\w[\\w-]*)", HeaderEcho]]));
  for (const v of ["a;Domain=evil.example", "a,Path=/admin", "a\"b", "a\\b;HttpOnly"]) {
    const res = await getOnce(port, `/cookie?v=${encodeURIComponent(v)}`);
    t.equal(res?.status, 200, v);
    t.equal(res?.setCookies.length, 1);
    const cookie = res?.setCookies[0] ?? "";
    t.match(cookie, /^c="(?:[^"\\]|\\.)*"; Path=\/$/, `${v}: one quoted value, then only Path: ${cookie}`);
  }
  const spaced = await getOnce(port, `/cookie?v=${encodeURIComponent("a; Domain=evil.example")}`);
  t.equal(spaced?.status, 500, "whitespace in a value is refused outright (Tornado)");
});

class CookieEcho extends RequestHandler {
  get(): void {
    this.write({ cookies: this.request.cookies, toString: this.getCookie("toString", "absent"), proto: this.getCookie("__proto__", "absent") });
  }
}

t.test("incoming cookies: invalid names are dropped, nothing reaches prototypes, garbage never fails", async (t) => {
  const { port } = await listen(t, new Application([["/", CookieEcho]]));
  const body = async (cookie: string): Promise<{ cookies: Record<string, string>; toString: string; proto: string }> => {
    const res = await exchange(port, request("/", `Cookie: ${cookie}\r\n`));
    t.equal(res.responses[0]?.status, 200, `Cookie: ${JSON.stringify(cookie)} is answered`);
    return JSON.parse(res.responses[0]?.body.toString() ?? "{}") as { cookies: Record<string, string>; toString: string; proto: string };
  };
  t.same((await body("good=1; bad name=2; b@d=3; path=/x; =4; ok=\"q\\073\"")).cookies, { good: "1", ok: "q;" });
  const none = await body("a=1");
  t.equal(none.toString, "absent", "an unsent name is absent even if Object.prototype has it");
  const proto = await body("__proto__=x; constructor=y");
  t.equal(proto.proto, "x", "__proto__ is an ordinary cookie name");
  t.equal(({} as Record<string, unknown>)["x"], undefined, "Object.prototype untouched");
  for (const garbage of [";;;;", "=;=;=", "\"\"\"", "a=\"unterminated", "a=\\", "\xff\xfe=\xfd", "a=1;".repeat(500)]) {
    await body(garbage);
  }
});

// ---- Signed cookies ---------------------------------------------------------------------------

const KEYS = { 0: "old secret", 1: "new secret" };
const DAY = 86400;
const now = (): number => Date.now() / 1000;

class SignedEcho extends RequestHandler {
  get(): void {
    this.write(this.getSignedCookie("session") ?? "<null>");
  }
}

t.test("signed cookies: tampered at any byte, expired, moved to another name, or of an unknown key version read as null", async (t) => {
  const app = new Application([["/", SignedEcho]], { cookieSecret: KEYS, keyVersion: 1 });
  const read = async (value: string): Promise<string> => (await app.inject({ url: "/", headers: { cookie: `session=${value}` } })).text();
  const good = createSignedValue(KEYS, "session", "alice", { keyVersion: 1 });
  t.equal(await read(good), "alice", "a good value is read");
  t.equal(await read(createSignedValue(KEYS, "session", "alice", { keyVersion: 0 })), "alice", "the previous key version is still read");

  let tampered = 0;
  for (let i = 0; i < good.length; i++) {
    const replacement = good[i] === "A" ? "B" : good[i] === "0" ? "1" : "A";
    const forged = good.slice(0, i) + replacement + good.slice(i + 1);
    if ((await read(forged)) === "<null>") tampered++;
    else t.fail(`a value changed at byte ${i} was accepted: ${forged}`);
  }
  t.equal(tampered, good.length, `all ${good.length} single-byte changes rejected`);
  t.equal(await read(good.slice(0, -1)), "<null>", "truncated signature");
  t.equal(await read(`${good}0`), "<null>", "extended signature");

  t.equal(await read(createSignedValue(KEYS, "session", "alice", { keyVersion: 1, clock: () => now() - 32 * DAY })), "<null>", "older than 31 days");
  t.equal(await read(createSignedValue(KEYS, "session", "alice", { keyVersion: 1, clock: () => now() - 30 * DAY })), "alice", "30 days is still fine");
  t.equal(await read(createSignedValue(KEYS, "other", "alice", { keyVersion: 1 })), "<null>", "signed for another cookie name");
  t.equal(await read(createSignedValue({ 7: "new secret" }, "session", "alice", { keyVersion: 7 })), "<null>", "an unknown key version, even with a known key");
  t.equal(await read(createSignedValue({ 1: "attacker" }, "session", "alice", { keyVersion: 1 })), "<null>", "signed with another secret");
  t.equal(await read(good.replace("2|1:1|", "2|1:0|")), "<null>", "key version field rewritten");
  t.equal(await read(createSignedValue("new secret", "session", "alice", { version: 1 })), "<null>", "a v1 value where keys are versioned");

  const rotated = new Application([["/", SignedEcho]], { cookieSecret: { 1: "new secret" }, keyVersion: 1 });
  const old = createSignedValue(KEYS, "session", "alice", { keyVersion: 0 });
  t.equal((await rotated.inject({ url: "/", headers: { cookie: `session=${old}` } })).text(), "<null>", "a retired key version is refused");
});

// ---- XSRF -------------------------------------------------------------------------------------

// The comparisons are checked by behaviour: node:crypto's timingSafeEqual is replaced (through
// `syncBuiltinESMExports`, which updates the ES module bindings every importer holds) by a spy
// that records its arguments and can force its answer. If a request's outcome follows the
// forced answer, the decision was taken by timingSafeEqual and by nothing that stops at the
// first differing byte (an `===` or `equals` before or instead of it would not be overruled).
type Verdict = "real" | "equal" | "different";
const nodeCrypto = createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto");
const realTimingSafeEqual = nodeCrypto.timingSafeEqual;
const spy = { verdict: "real" as Verdict, calls: [] as [Buffer, Buffer][] };

function installSpy(t: Test): void {
  nodeCrypto.timingSafeEqual = (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView): boolean => {
    const bytes = (v: NodeJS.ArrayBufferView): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    spy.calls.push([Buffer.from(bytes(a)), Buffer.from(bytes(b))]);
    const real = realTimingSafeEqual(a, b);
    return spy.verdict === "real" ? real : spy.verdict === "equal";
  };
  syncBuiltinESMExports();
  t.teardown(() => {
    nodeCrypto.timingSafeEqual = realTimingSafeEqual;
    syncBuiltinESMExports();
    spy.verdict = "real";
    spy.calls = [];
  });
}

t.test("XSRF tokens are compared by crypto.timingSafeEqual: its answer alone decides, on the raw tokens", async (t) => {
  captureLog(t);
  installSpy(t);
  const { port } = await listen(t, new Application([["/", XsrfForm]], { xsrfCookies: true }));
  const secret = Buffer.from("00112233445566778899aabbccddeeff", "hex");
  const other = Buffer.from("ffeeddccbbaa99887766554433221100", "hex");
  const post = async (token: string, verdict: Verdict): Promise<number | undefined> => {
    spy.verdict = verdict;
    spy.calls = [];
    const ex = await exchange(port, `POST / HTTP/1.1\r\nHost: x\r\nCookie: _xsrf=${createXsrfToken(secret).token}\r\n` +
      `X-XSRFToken: ${token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    return ex.responses[0]?.status;
  };
  t.equal(await post(createXsrfToken(secret).token, "real"), 200, "the matching token passes");
  t.ok(spy.calls.some(([a, b]) => a.equals(secret) && b.equals(secret)), "timingSafeEqual compared the two unmasked secrets");
  t.equal(await post(createXsrfToken(other).token, "real"), 403, "a different token of the same length is refused");
  t.ok(spy.calls.some(([a, b]) => (a.equals(other) && b.equals(secret)) || (a.equals(secret) && b.equals(other))), "by timingSafeEqual");
  t.equal(await post(createXsrfToken(secret).token, "different"), 403, "the matching token is refused when timingSafeEqual says different");
  t.equal(await post(createXsrfToken(other).token, "equal"), 200, "a wrong token passes when timingSafeEqual says equal: nothing else decided");
});

t.test("signed-cookie signatures are compared by crypto.timingSafeEqual: its answer alone decides", async (t) => {
  installSpy(t);
  const app = new Application([["/", SignedEcho]], { cookieSecret: KEYS, keyVersion: 1 });
  const read = async (value: string, verdict: Verdict): Promise<string> => {
    spy.verdict = verdict;
    spy.calls = [];
    return (await app.inject({ url: "/", headers: { cookie: `session=${value}` } })).text();
  };
  const good = createSignedValue(KEYS, "session", "alice", { keyVersion: 1 });
  const signature = good.slice(good.lastIndexOf("|") + 1);
  // Same length, every hex digit changed: a comparison that stops early would stop at once.
  const forged = good.slice(0, -signature.length) + [...signature].map((c) => (c === "0" ? "1" : "0")).join("");
  t.equal(await read(good, "real"), "alice", "a good value is read");
  t.ok(spy.calls.some(([a, b]) => a.toString("latin1") === signature && b.toString("latin1") === signature), "timingSafeEqual compared the signature with the expected one");
  t.equal(await read(forged, "real"), "<null>", "a forged signature is refused");
  t.equal(await read(good, "different"), "<null>", "a good value is refused when timingSafeEqual says different");
  t.equal(await read(forged, "equal"), "alice", "a forged signature is read when timingSafeEqual says equal: nothing else decided");
});

t.test("xsrfTokensMatch: equal only for identical non-empty tokens, whatever byte differs", async (t) => {
  const raw = Buffer.from("0123456789abcdef0123456789abcdef", "hex");
  t.ok(xsrfTokensMatch(raw, Buffer.from(raw)));
  for (let i = 0; i < raw.length; i++) {
    const other = Buffer.from(raw);
    other[i] = other[i]! ^ 0x01;
    t.notOk(xsrfTokensMatch(raw, other), `differs at byte ${i}`);
  }
  t.notOk(xsrfTokensMatch(raw, raw.subarray(0, 15)), "shorter");
  t.notOk(xsrfTokensMatch(Buffer.alloc(0), Buffer.alloc(0)), "empty never matches");
});

class XsrfForm extends RequestHandler {
  get(): void { this.write(this.xsrfToken); }
  post(): void { this.write("accepted"); }
}

t.test("XSRF over the wire: only a token carrying the cookie's secret passes, masked or not", async (t) => {
  captureLog(t);
  const { port } = await listen(t, new Application([["/", XsrfForm]], { xsrfCookies: true }));
  const secret = Buffer.from("00112233445566778899aabbccddeeff", "hex");
  const cookie = createXsrfToken(secret).token;
  const post = async (token: string | null, cookieValue: string | null = cookie): Promise<number | undefined> => {
    const headers = `${cookieValue === null ? "" : `Cookie: _xsrf=${cookieValue}\r\n`}${token === null ? "" : `X-XSRFToken: ${token}\r\n`}`;
    const ex = await exchange(port, `POST / HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: 0\r\nConnection: close\r\n\r\n`);
    return ex.responses[0]?.status;
  };
  t.equal(await post(createXsrfToken(secret).token), 200, "another mask of the same secret");
  t.equal(await post(secret.toString("hex")), 200, "the unmasked (v1) form");
  const flipped = (i: number): string => { const b = Buffer.from(secret); b[i] = b[i]! ^ 0x80; return createXsrfToken(b).token; };
  t.equal(await post(flipped(0)), 403, "differs in the first byte");
  t.equal(await post(flipped(15)), 403, "differs in the last byte");
  t.equal(await post(createXsrfToken(secret.subarray(0, 15)).token), 403, "a prefix of the secret");
  t.equal(await post(null), 403, "no token");
  t.equal(await post(createXsrfToken(secret).token, null), 403, "no cookie");
  t.equal(await post(""), 403, "empty token");
  t.equal(await post("2|zz|zz|1"), 403, "malformed token");
  const res = await getOnce(port, "/");
  t.match(res?.setCookies[0] ?? "", /^_xsrf=2\|[0-9a-f]{8}\|[0-9a-f]{32}\|\d+; Path=\/$/, "a fresh client is given a v2 token cookie");
});

// ---- Error pages ------------------------------------------------------------------------------

const XSS = "<script>alert(1)</script>";

class Reasoned extends RequestHandler {
  get(): void { throw new HTTPError(400, `log only: ${this.getArgument("r")}`, { reason: this.getArgument("r") }); }
}
class Crashing extends RequestHandler {
  get(): void { throw new Error(`boom ${this.getArgument("m", XSS)}`); }
}
class Missing extends RequestHandler {
  get(): void { this.write(this.getArgument("needed")); }
}

function errorApp(settings: AppSettings = {}): Application {
  return new Application([["/reason", Reasoned], ["/crash", Crashing], ["/missing", Missing]], settings);
}

t.test("error pages never echo input unescaped, in HTML or JSON", async (t) => {
  captureLog(t);
  const { port } = await listen(t, errorApp());
  const notFound = await getOnce(port, `/${encodeURIComponent(XSS)}`);
  t.equal(notFound?.status, 404);
  t.notMatch(notFound?.body.toString() ?? "", /<script|alert/, "404 does not echo the path");
  const reason = await getOnce(port, `/reason?r=${encodeURIComponent(`<img src=x onerror=alert(1)>`)}`);
  t.equal(reason?.status, 400);
  t.notMatch(reason?.body.toString() ?? "", /<img|onerror/, "a reason with markup is never echoed");
  t.match(reason?.body.toString() ?? "", /400: Unknown/, "it is replaced by Unknown (Tornado)");
  const quoted = await getOnce(port, `/reason?r=${encodeURIComponent(`Tom & "Jerry"`)}`);
  t.match(quoted?.body.toString() ?? "", /Tom &amp; &quot;Jerry&quot;/, "a reason that may be sent is escaped in the page");
  t.notMatch(reason?.body.toString() ?? "", /log only/, "logMessage is never sent");
  const json = await exchange(port, request(`/reason?r=${encodeURIComponent(`"},"x":"y`)}`, "Accept: application/json\r\n"));
  const parsed = JSON.parse(json.responses[0]?.body.toString() ?? "null") as { status: number; reason: string };
  t.same(parsed, { status: 400, reason: "\"},\"x\":\"y" }, "JSON error pages are valid JSON holding the text as data");
  t.match(json.responses[0]?.headers["content-type"] ?? "", /^application\/json/);
  const missing = await getOnce(port, `/missing?${encodeURIComponent(XSS)}=1`);
  t.equal(missing?.status, 400);
  t.notMatch(missing?.body.toString() ?? "", /<script/);
  const method = await exchange(port, `DELETE /reason HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  t.equal(method.responses[0]?.status, 405);
});

t.test("no stack trace or error message in a 500 unless serveTraceback, and then escaped", async (t) => {
  captureLog(t);
  const plain = await listen(t, errorApp());
  const hidden = await getOnce(plain.port, "/crash");
  t.equal(hidden?.status, 500);
  t.equal(hidden?.body.toString(), "<html><title>500: Internal Server Error</title><body>500: Internal Server Error</body></html>");
  const debugOff = await listen(t, errorApp({ debug: true, serveTraceback: false }));
  t.notMatch((await getOnce(debugOff.port, "/crash"))?.body.toString() ?? "", /boom|at /, "serveTraceback: false wins over debug");

  const traced = await listen(t, errorApp({ serveTraceback: true }));
  const shown = (await getOnce(traced.port, "/crash"))?.body.toString() ?? "";
  t.match(shown, /<pre>Error: boom &lt;script&gt;alert\(1\)&lt;\/script&gt;\n\s+at /, "the stack, escaped");
  t.notMatch(shown, /<script>/);
  const json = await exchange(traced.port, request("/crash", "Accept: application/json\r\n"));
  const body = JSON.parse(json.responses[0]?.body.toString() ?? "{}") as { traceback?: string };
  t.match(body.traceback ?? "", /^Error: boom/, "JSON carries the trace as a string");
  const http = await getOnce(traced.port, "/reason?r=nope");
  t.notMatch(http?.body.toString() ?? "", /at |log only/, "an HTTPError never shows a trace, even with serveTraceback");
});
