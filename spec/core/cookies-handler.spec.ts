// Cookies through a handler over real requests: getCookie, setCookie with every option,
// clearCookie, signed cookies set then read back, tampering, Tornado's published vector read by
// getSignedCookie, key versions, and the XSRF check on unsafe methods.
import t from "tap";
import { Application, RequestHandler, createSignedValue, withServer } from "../../core/index.ts";
import { captureLog } from "../helpers/log.ts";

const SECRET = "It's a secret to everybody";
const TORNADO_VECTOR = "2|1:0|10:1300000000|3:key|8:dmFsdWU=|3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152";

class Cookies extends RequestHandler {
  get(kind: string): void {
    if (kind === "read") this.write({ a: this.getCookie("a") ?? null, missing: this.getCookie("missing", "dflt") ?? null, all: this.request.cookies });
    else if (kind === "set") {
      this.setCookie("plain", "v1");
      this.setCookie("full", "v2", {
        domain: "example.com", path: "/app", expires: new Date(Date.UTC(2030, 0, 1)), maxAge: 60, httpOnly: true, secure: true, sameSite: "Lax",
      });
      this.setCookie("days", "v3", { expiresDays: 2 });
      this.setCookie("plain", "replaced");
      this.write("set");
    } else if (kind === "clear") {
      this.clearCookie("gone", { path: "/app" });
      this.write("cleared");
    } else if (kind === "bad") {
      this.setCookie("bad name;", "v");
    }
  }
}

class Signed extends RequestHandler {
  get(kind: string): void {
    if (kind === "set") {
      this.setSignedCookie("session", "user-7 é");
      this.write("signed");
    } else if (kind === "tornado") {
      this.write({ value: this.getSignedCookie("key", { maxAgeDays: 365 * 100 }), defaultAge: this.getSignedCookie("key") });
    } else {
      this.write({ value: this.getSignedCookie("session") });
    }
  }
}

class Xsrf extends RequestHandler {
  get(): void { this.write(this.xsrfFormHtml()); }
  post(): void { this.write("accepted"); }
}

const app = new Application([["/cookies/(\\w+)", Cookies], ["/signed/(\\w+)", Signed]], { cookieSecret: SECRET });
const versioned = new Application([["/signed/(\\w+)", Signed]], { cookieSecret: { 0: "old secret", 1: "new secret" }, keyVersion: 1 });
const noSecret = new Application([["/signed/(\\w+)", Signed]]);
const xsrfApp = new Application([["/form", Xsrf]], { xsrfCookies: true });

function setCookies(headers: Record<string, string | string[] | undefined>): string[] {
  const v = headers["set-cookie"];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** The cookie pairs (`name=value`) of a response's Set-Cookie headers, ready for a Cookie header. */
function cookieHeader(headers: Record<string, string | string[] | undefined>): string {
  return setCookies(headers).map((c) => c.split(";", 1)[0]).join("; ");
}

t.test("getCookie reads the client's cookies, with a default", async (t) => {
  const res = await app.inject({ url: "/cookies/read", headers: { cookie: "a=1; b=\"quoted\"; c=x=y" } });
  t.match(res.json(), { a: "1", missing: "dflt", all: { a: "1", c: "x=y" } });
  t.same((await app.inject({ url: "/cookies/read" })).json(), { a: null, missing: "dflt", all: {} });
});

t.test("setCookie writes one Set-Cookie per name, with its options", async (t) => {
  await withServer(app, async (base) => {
    const res = await fetch(`${base}/cookies/set`);
    const cookies = res.headers.getSetCookie();
    t.equal(cookies.length, 3, "setting a name twice keeps the last");
    t.match(cookies[0], /^plain=replaced; Path=\//);
    const full = cookies[1]!;
    // Python's SimpleCookie spelling, as Tornado sends it: `expires` lower-case.
    for (const part of ["full=v2", "Domain=example.com", "Path=/app", "expires=Tue, 01 Jan 2030 00:00:00 GMT", "Max-Age=60", "HttpOnly", "Secure", "SameSite=Lax"]) {
      t.ok(full.split("; ").includes(part), `${part} in ${full}`);
    }
    const expires = /expires=([^;]+)/i.exec(cookies[2]!)?.[1];
    const days = (Date.parse(expires ?? "") - Date.now()) / 86_400_000;
    t.ok(days > 1.9 && days <= 2.01, `expiresDays: 2 → about two days (${days})`);
  });
});

t.test("clearCookie expires the cookie at its path", async (t) => {
  const [cleared] = setCookies((await app.inject({ url: "/cookies/clear" })).headers);
  t.match(cleared, /^gone=(""|);/);
  t.match(cleared, /Path=\/app/);
  t.match(cleared, /Max-Age=0/);
  const expires = Date.parse(/expires=([^;]+)/i.exec(cleared!)?.[1] ?? "");
  t.ok(expires < Date.now(), "an Expires in the past");
});

t.test("an invalid cookie name is a 500 for the handler, not a broken header", async (t) => {
  captureLog(t);
  const res = await app.inject({ url: "/cookies/bad" });
  t.equal(res.status, 500);
  t.same(setCookies(res.headers), []);
});

t.test("a signed cookie set by the handler reads back; tampered or renamed → null", async (t) => {
  const set = await app.inject({ url: "/signed/set" });
  const [cookie] = setCookies(set.headers);
  t.match(cookie, /^session="?2\|1:0\|10:\d{10}\|7:session\|/, "Tornado's version-2 format");
  const expires = Date.parse(/expires=([^;]+)/i.exec(cookie ?? "")?.[1] ?? "");
  t.ok(Math.abs((expires - Date.now()) / 86_400_000 - 30) < 0.1, "expiresDays defaults to 30");
  const pair = cookieHeader(set.headers);
  t.same((await app.inject({ url: "/signed/get", headers: { cookie: pair } })).json(), { value: "user-7 é" });
  const value = pair.slice("session=".length).replace(/^"|"$/g, "");
  const tampered = value.slice(0, -1) + (value.endsWith("0") ? "1" : "0");
  t.same((await app.inject({ url: "/signed/get", headers: { cookie: `session="${tampered}"` } })).json(), { value: null });
  const payload = value.replace(/\|[0-9a-f]+$/, "");
  t.same((await app.inject({ url: "/signed/get", headers: { cookie: `session="${payload}|${"0".repeat(64)}"` } })).json(), { value: null });
  t.same((await app.inject({ url: "/signed/get", headers: { cookie: "session=garbage" } })).json(), { value: null });
  t.same((await app.inject({ url: "/signed/get" })).json(), { value: null });
  const other = new Application([["/signed/(\\w+)", Signed]], { cookieSecret: "another secret" });
  t.same((await other.inject({ url: "/signed/get", headers: { cookie: pair } })).json(), { value: null }, "another secret rejects it");
});

t.test("getSignedCookie reads Tornado's published vector (old, so with a wide maxAgeDays)", async (t) => {
  t.equal(createSignedValue(SECRET, "key", "value", { clock: () => 1300000000 }), TORNADO_VECTOR, "the vector itself");
  const res = await app.inject({ url: "/signed/tornado", headers: { cookie: `key="${TORNADO_VECTOR}"` } });
  t.same(res.json(), { value: "value", defaultAge: null }, "read with maxAgeDays, expired under the default 31 days");
});

t.test("with versioned secrets, new cookies use keyVersion and old versions still read", async (t) => {
  const [cookie] = setCookies((await versioned.inject({ url: "/signed/set" })).headers);
  t.match(cookie, /^session="?2\|1:1\|/, "key version 1 is written");
  const old = createSignedValue({ 0: "old secret" }, "session", "from v0", { keyVersion: 0 });
  t.same((await versioned.inject({ url: "/signed/get", headers: { cookie: `session="${old}"` } })).json(), { value: "from v0" });
});

t.test("signed cookies without cookieSecret are a 500 (a configuration error), logged", async (t) => {
  const lines = captureLog(t);
  t.equal((await noSecret.inject({ url: "/signed/set" })).status, 500);
  t.match(lines.map((l) => l.message).join("\n"), "cookieSecret");
});

t.test("XSRF: unsafe methods need the token from the cookie, as an argument or header; else 403", async (t) => {
  captureLog(t);
  const form = await xsrfApp.inject({ url: "/form" });
  const token = /value="([^"]+)"/.exec(form.text())?.[1] ?? "";
  const cookie = cookieHeader(form.headers);
  t.match(cookie, /^_xsrf=/);
  t.ok(token.length > 0);
  const urlencoded = { "content-type": "application/x-www-form-urlencoded", cookie };
  t.equal((await xsrfApp.inject({ method: "POST", url: "/form", headers: urlencoded, body: `_xsrf=${encodeURIComponent(token)}` })).text(), "accepted");
  t.equal((await xsrfApp.inject({ method: "POST", url: "/form", headers: { cookie, "x-xsrftoken": token } })).status, 200);
  t.equal((await xsrfApp.inject({ method: "POST", url: "/form", headers: { cookie, "x-csrftoken": token } })).status, 200);
  t.equal((await xsrfApp.inject({ method: "POST", url: "/form", headers: { cookie } })).status, 403, "no token");
  t.equal((await xsrfApp.inject({ method: "POST", url: "/form", headers: { "x-xsrftoken": token } })).status, 403, "no cookie");
  t.equal((await xsrfApp.inject({ method: "POST", url: "/form", headers: { cookie, "x-xsrftoken": "2|00|00|00" } })).status, 403, "bad token");
  const other = await xsrfApp.inject({ url: "/form" });
  t.equal((await xsrfApp.inject({ method: "POST", url: "/form", headers: { cookie: cookieHeader(other.headers), "x-xsrftoken": token } })).status, 403, "another client's token");
  t.equal((await xsrfApp.inject({ url: "/form", headers: { cookie } })).status, 200, "GET needs no token");
  t.equal((await xsrfApp.inject({ method: "POST", url: "/nowhere" })).status, 404, "an unknown URL is a 404, not a 403");
});

class MinVersionReader extends RequestHandler {
  get(): void {
    this.write({ any: this.getSignedCookie("s"), v2only: this.getSignedCookie("s", { minVersion: 2 }) });
  }
}

t.test("getSignedCookie(name, { minVersion: 2 }) refuses a version-1 value that the default reads", async (t) => {
  const reader = new Application([["/", MinVersionReader]], { cookieSecret: SECRET });
  const read = async (value: string): Promise<unknown> => (await reader.inject({ url: "/", headers: { cookie: `s="${value}"` } })).json();
  t.same(await read(createSignedValue(SECRET, "s", "old", { version: 1 })), { any: "old", v2only: null }, "a v1 value");
  t.same(await read(createSignedValue(SECRET, "s", "new")), { any: "new", v2only: "new" }, "a v2 value passes both");
});
