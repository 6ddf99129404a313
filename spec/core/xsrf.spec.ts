// XSRF protection (xsrfCookies) over real sockets, as Tornado's XSRFTest: the token in the
// _xsrf cookie, the _xsrf form field, the X-XSRFToken and X-CSRFToken headers, 403s for
// missing, malformed and mismatched tokens, and a 404 (not a 403) for unknown URLs.
import t from "tap";
import { Application } from "../../core/web/app.ts";
import { RequestHandler } from "../../core/web/handler.ts";
import { createXsrfToken, decodeXsrfToken } from "../../core/http/signing.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog } from "../helpers/log.ts";
import { rawRequest } from "../handlers/raw-request.ts";
import type { Test } from "tap";

class FormHandler extends RequestHandler {
  get(): void {
    this.write(`<form method="post">${this.xsrfFormHtml()}</form>`);
  }
  post(): void {
    this.write("ok");
  }
  put(): void {
    this.write("ok");
  }
}

class TokenHandler extends RequestHandler {
  get(): void {
    this.write(this.xsrfToken);
  }
}

const FORM = { "Content-Type": "application/x-www-form-urlencoded" };

async function serve(t: Test): Promise<string> {
  captureLog(t);
  const app = new Application([["/", FormHandler], ["/token", TokenHandler]], { xsrfCookies: true });
  const { port } = await listen(t, app);
  return `http://127.0.0.1:${port}`;
}

/** A fresh client: the cookie the server set, and the token of the page it was set with. */
async function session(base: string): Promise<{ cookie: string; token: string }> {
  const r = await rawRequest(base, "/token");
  const setCookie = r.headers["set-cookie"]?.[0] ?? "";
  const cookie = /^_xsrf=([^;]*)/.exec(setCookie)?.[1] ?? "";
  return { cookie, token: r.text() };
}

t.test("a GET sets the _xsrf cookie in Tornado's version-2 format; the form carries a token", async (t) => {
  const base = await serve(t);
  const page = await rawRequest(base, "/");
  t.match(page.headers["set-cookie"]?.[0], /^_xsrf=2\|[0-9a-f]{8}\|[0-9a-f]{32}\|\d+; Path=\/$/);
  t.match(page.text(), /<input type="hidden" name="_xsrf" value="2\|[0-9a-f]{8}\|[0-9a-f]{32}\|\d+"\/>/);
  const { cookie, token } = await session(base);
  const withCookie = await rawRequest(base, "/token", { headers: { Cookie: `_xsrf=${cookie}` } });
  t.equal(withCookie.headers["set-cookie"], undefined, "an existing cookie is not replaced");
  t.not(withCookie.text(), token, "each token is masked afresh");
  t.same(decodeXsrfToken(withCookie.text())!.raw, decodeXsrfToken(cookie)!.raw, "but carries the cookie's secret");
});

t.test("POST without any token is 403; with the cookie alone still 403", async (t) => {
  const base = await serve(t);
  const { cookie } = await session(base);
  t.equal((await rawRequest(base, "/", { method: "POST", headers: FORM, body: "" })).status, 403);
  t.equal((await rawRequest(base, "/", { method: "POST", headers: { ...FORM, Cookie: `_xsrf=${cookie}` }, body: "" })).status, 403);
});

t.test("the _xsrf form field, X-XSRFToken and X-CSRFToken each pass with the matching cookie", async (t) => {
  const base = await serve(t);
  const { cookie, token } = await session(base);
  const headers = { ...FORM, Cookie: `_xsrf=${cookie}` };
  const field = await rawRequest(base, "/", { method: "POST", headers, body: `_xsrf=${encodeURIComponent(token)}` });
  t.equal(field.status, 200);
  t.equal(field.text(), "ok");
  t.equal((await rawRequest(base, "/", { method: "POST", headers: { ...headers, "X-XSRFToken": token }, body: "" })).status, 200);
  t.equal((await rawRequest(base, "/", { method: "PUT", headers: { ...headers, "X-CSRFToken": token }, body: "" })).status, 200);
  t.equal((await rawRequest(base, "/", { method: "POST", headers: { ...headers, "X-XSRFToken": cookie }, body: "" })).status, 200,
    "the cookie value itself is a valid token");
});

t.test("a token from another cookie, a malformed token, or no cookie: 403", async (t) => {
  const base = await serve(t);
  const mine = await session(base);
  const theirs = await session(base);
  const post = (headers: Record<string, string>): Promise<number> =>
    rawRequest(base, "/", { method: "POST", headers: { ...FORM, ...headers }, body: "" }).then((r) => r.status);
  t.equal(await post({ Cookie: `_xsrf=${mine.cookie}`, "X-XSRFToken": theirs.token }), 403, "mismatch");
  t.equal(await post({ Cookie: `_xsrf=${mine.cookie}`, "X-XSRFToken": "2|zz|zz|1" }), 403, "malformed");
  t.equal(await post({ "X-XSRFToken": mine.token }), 403, "no cookie");
  const forged = createXsrfToken(Buffer.alloc(16, 1)).token;
  t.equal(await post({ Cookie: `_xsrf=${mine.cookie}`, "X-XSRFToken": forged }), 403, "a well-formed token with another secret");
});

t.test("safe methods need no token; an unknown URL is a 404 even for a POST without one", async (t) => {
  const base = await serve(t);
  t.equal((await rawRequest(base, "/")).status, 200);
  t.equal((await rawRequest(base, "/", { method: "HEAD" })).status, 200);
  t.equal((await rawRequest(base, "/", { method: "OPTIONS" })).status, 204);
  t.equal((await rawRequest(base, "/nowhere", { method: "POST", headers: FORM, body: "" })).status, 404);
});
