// Cases ported from Tornado's tornado/test/web_test.py, each named after the Tornado test it
// comes from: the lifecycle order (prepare() before the "not implemented" 405), lazy
// current_user, cookies and XSRF names, host matching, static URLs, decode_argument, status
// reasons, 304 headers, compression and ETags, and a handler's wrong Content-Length.
import t from "tap";
import { createGunzip } from "node:zlib";
import { fileURLToPath } from "node:url";
import {
  Application, ErrorHandler, Finish, HTTPError, RequestHandler, authenticated, createXsrfToken,
} from "../../core/index.ts";
import { exchange } from "../helpers/raw-http.ts";
import { expectLog, fetch, serve, type Served } from "../helpers/tornado.ts";

const STATIC = fileURLToPath(new URL("../fixtures/static/root", import.meta.url));
const METHODS_WITH_BODY = ["POST", "PUT", "PATCH"];
const ALL_METHODS = ["GET", "HEAD", "DELETE", "OPTIONS", ...METHODS_WITH_BODY];

function call(served: Served, method: string, path = "/"): ReturnType<typeof fetch> {
  return fetch(served, path, METHODS_WITH_BODY.includes(method) ? { method, body: "" } : { method });
}

// ---- Lifecycle order --------------------------------------------------------------------------

t.test("Custom404Test: a defaultHandlerClass get() answers 404 with its own body", async (t) => {
  class Custom404Handler extends RequestHandler {
    get(): void {
      this.setStatus(404);
      this.write("custom 404 response");
    }
  }
  const served = await serve(t, new Application([["/foo", RequestHandler]], { defaultHandlerClass: Custom404Handler }));
  const res = await fetch(served, "/");
  t.equal(res.code, 404);
  t.equal(res.text, "custom 404 response");
});

t.test("Custom404Test: prepare() raising 404 wins for every method", async (t) => {
  expectLog(t);
  let prepared = 0;
  class NotFound extends RequestHandler {
    override prepare(): void {
      prepared++;
      throw new HTTPError(404);
    }
  }
  const served = await serve(t, new Application([], { defaultHandlerClass: NotFound }));
  for (const method of ALL_METHODS) {
    const res = await call(served, method, "/nowhere");
    t.equal(res.code, 404, `${method} /nowhere`);
  }
  t.equal(prepared, ALL_METHODS.length, "prepare() ran for every method");
});

t.test("Default404Test: an unknown URL is a 404 with Tornado's page, for POST too", async (t) => {
  expectLog(t);
  const served = await serve(t, new Application([["/foo", RequestHandler]]));
  const res = await fetch(served, "/");
  t.equal(res.code, 404);
  t.equal(res.text, "<html><title>404: Not Found</title><body>404: Not Found</body></html>");
  t.equal((await call(served, "POST", "/")).code, 404);
});

t.test("DefaultHandlerArgumentsTest: ErrorHandler as defaultHandlerClass answers its status", async (t) => {
  expectLog(t);
  const served = await serve(t, new Application([["/foo", RequestHandler]], {
    defaultHandlerClass: ErrorHandler, defaultHandlerArgs: { statusCode: 403 },
  }));
  t.equal((await fetch(served, "/")).code, 403);
});

t.test("FinishInPrepareTest: prepare() finishing wins, even over a method that is not implemented", async (t) => {
  expectLog(t);
  class Handler extends RequestHandler {
    override prepare(): void {
      this.finish("done");
    }
    get(): void {
      throw new Error("should not reach this method");
    }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  const res = await fetch(served, "/");
  t.equal(res.text, "done");
  for (const method of ["POST", "PUT", "DELETE"]) {
    const other = await call(served, method);
    t.equal(other.code, 200, `${method}: prepare() answered, no 405`);
    t.equal(other.text, "done");
  }
});

t.test("FinishInPrepareTest: a prepare() that redirects wins over a missing method", async (t) => {
  class Handler extends RequestHandler {
    override async prepare(): Promise<void> {
      await Promise.resolve();
      this.redirect("/elsewhere");
    }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  const res = await call(served, "POST");
  t.equal(res.code, 302);
  t.equal(res.headers["location"], "/elsewhere");
});

t.test("UnimplementedHTTPMethodsTest: a handler without methods answers 405, after prepare()", async (t) => {
  expectLog(t);
  let prepared = 0;
  class Handler extends RequestHandler {
    override prepare(): void {
      prepared++;
    }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  for (const method of ["HEAD", "GET", "DELETE", "POST", "PUT"]) {
    t.equal((await call(served, method)).code, 405, method);
  }
  t.equal(prepared, 5, "prepare() ran before each 405");
});

t.test("UnimplementedNonStandardMethodsTest.test_unimplemented_patch: PATCH without patch() is a 405", async (t) => {
  expectLog(t);
  class Handler extends RequestHandler {
    other(): void {
      this.write("other");
    }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  const res = await call(served, "PATCH");
  t.equal(res.code, 405);
  t.match(String(res.headers["allow"]), /OPTIONS/);
});

t.test("UnimplementedNonStandardMethodsTest.test_unimplemented_other: a method outside supportedMethods is a 405 before prepare() and the body", async (t) => {
  expectLog(t);
  let prepared = 0;
  let bodyRead = false;
  class Handler extends RequestHandler {
    static override supportedMethods = ["GET"];
    override prepare(): void {
      prepared++;
      bodyRead = this.request.body.length > 0;
    }
    get(): void {
      this.write("get");
    }
    post(): void {
      this.write("never: POST is not supported");
    }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  const res = await fetch(served, "/", { method: "POST", body: "x=1" });
  t.equal(res.code, 405);
  t.equal(prepared, 0, "prepare() did not run");
  t.equal(bodyRead, false);
  // OTHER itself cannot be ported: node's parser refuses methods it does not know (MIGRATING.md).
  const { responses } = await exchange(served.port, "OTHER / HTTP/1.1\r\nHost: x\r\n\r\n", { responses: 1 });
  t.equal(responses[0]?.status, 400, "an unknown method is refused by node's parser");
});

t.test("AllHTTPMethodsTest: every standard method reaches its implementation", async (t) => {
  class Handler extends RequestHandler {
    method(): void {
      this.write(this.request.method);
    }
    get(): void { this.method(); }
    delete(): void { this.method(); }
    options(): void { this.method(); }
    post(): void { this.method(); }
    put(): void { this.method(); }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  t.equal((await call(served, "HEAD")).text, "");
  for (const method of ["GET", "DELETE", "OPTIONS", "POST", "PUT"]) t.equal((await call(served, method)).text, method);
});

t.test("PatchMethodTest: PATCH, and an extra method named in supportedMethods (PROPFIND for OTHER)", async (t) => {
  class Handler extends RequestHandler {
    static override supportedMethods = [...RequestHandler.supportedMethods, "PROPFIND"];
    patch(): void { this.write("patch"); }
    propfind(): void { this.write("other"); }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  t.equal((await call(served, "PATCH")).text, "patch");
  t.equal((await fetch(served, "/", { method: "PROPFIND" })).text, "other");
});

t.test("PathArgsInPrepareTest: path arguments are set before prepare()", async (t) => {
  class Handler extends RequestHandler {
    override prepare(): void {
      this.write({ args: this.pathArgs, kwargs: { ...this.pathKwargs } });
    }
    get(path: unknown): void {
      const value = typeof path === "string" ? path : (path as Record<string, string>)["path"];
      if (value !== "foo") throw new Error(`unexpected ${String(value)}`);
      this.finish();
    }
  }
  const served = await serve(t, new Application([["/pos/(.*)", Handler], ["/kw/(?<path>.*)", Handler]]));
  t.same(JSON.parse((await fetch(served, "/pos/foo")).text), { args: ["foo"], kwargs: {} });
  t.same(JSON.parse((await fetch(served, "/kw/foo")).text), { args: [], kwargs: { path: "foo" } });
});

// ---- current_user ---------------------------------------------------------------------------

t.test("SetLazyPropertiesTest: currentUser assigned in prepare() skips getCurrentUser()", async (t) => {
  class Handler extends RequestHandler {
    override prepare(): void {
      this.currentUser = "Ben";
    }
    override getCurrentUser(): unknown {
      throw new Error("NotImplementedError");
    }
    get(): void {
      this.write(`Hello ${String(this.currentUser)}`);
    }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  const res = await fetch(served, "/");
  t.equal(res.code, 200);
  t.equal(res.text, "Hello Ben");
});

t.test("GetCurrentUserTest.test_get_current_user_is_lazy: a handler that never reads currentUser never calls the hook", async (t) => {
  let calls = 0;
  class CurrentUserHandler extends RequestHandler {
    override getCurrentUser(): unknown {
      calls++;
      return "";
    }
  }
  class WithoutUser extends CurrentUserHandler {
    get(): void { this.finish(String(calls > 0)); }
  }
  class WithUser extends CurrentUserHandler {
    get(): void {
      void this.currentUser;
      this.finish(String(calls > 0));
    }
  }
  const served = await serve(t, new Application([["/without_user", WithoutUser], ["/with_user", WithUser]]));
  t.equal((await fetch(served, "/without_user")).text, "false");
  t.equal(calls, 0);
  // GetCurrentUserTest.test_get_current_user_works
  t.equal((await fetch(served, "/with_user")).text, "true");
  t.equal(calls, 1);
});

t.test("GetCurrentUserTest (async hook): await resolveCurrentUser() runs the hook once; @authenticated awaits it", async (t) => {
  let calls = 0;
  class AsyncUser extends RequestHandler {
    override async getCurrentUser(): Promise<unknown> {
      calls++;
      await Promise.resolve();
      return this.request.headers["x-user"] ?? null;
    }
  }
  class Reads extends AsyncUser {
    async get(): Promise<void> {
      const first = await this.resolveCurrentUser();
      const second = await this.resolveCurrentUser();
      this.write({ first, second, sync: this.currentUser });
    }
  }
  class Guarded extends AsyncUser {
    @authenticated
    get(): void { this.write(`hello ${String(this.currentUser)}`); }
    @authenticated
    post(): void { this.write("posted"); }
  }
  const served = await serve(t, new Application([["/reads", Reads], ["/guarded", Guarded]], { loginUrl: "/login" }));
  t.same(JSON.parse((await fetch(served, "/reads", { headers: { "x-user": "ann" } })).text), { first: "ann", second: "ann", sync: "ann" });
  t.equal(calls, 1, "the hook ran once");
  t.equal((await fetch(served, "/guarded", { headers: { "x-user": "bob" } })).text, "hello bob");
  const anonymous = await fetch(served, "/guarded");
  t.equal(anonymous.code, 302);
  t.equal(anonymous.headers["location"], "/login?next=%2Fguarded");
  t.equal((await fetch(served, "/guarded", { method: "POST", body: "" })).code, 403);
});

t.test("XSRFTest.test_xsrf_fail_no_token: XSRF is still checked before prepare() with a lazy user", async (t) => {
  expectLog(t);
  let prepared = 0;
  let userCalls = 0;
  class Handler extends RequestHandler {
    override getCurrentUser(): unknown { userCalls++; return "u"; }
    override prepare(): void { prepared++; }
    post(): void { this.write("ok"); }
  }
  const served = await serve(t, new Application([["/", Handler]], { xsrfCookies: true }));
  t.equal((await fetch(served, "/", { method: "POST", body: "" })).code, 403);
  t.equal(prepared, 0);
  t.equal(userCalls, 0);
});

// ---- Cookies and XSRF names ---------------------------------------------------------------------

t.test("ClearAllCookiesTest: clearAllCookies() expires every cookie the request sent", async (t) => {
  class Handler extends RequestHandler {
    get(): void {
      this.clearAllCookies();
      this.write("ok");
    }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  const res = await fetch(served, "/", { headers: { cookie: "foo=bar; baz=xyzzy" } });
  const cookies = [...(res.headers["set-cookie"] ?? [])].sort();
  t.equal(cookies.length, 2);
  t.match(cookies[0], /^baz="";/);
  t.match(cookies[1], /^foo="";/);
  t.match(cookies[0]!, /expires=/i);
});

t.test("XSRFCookieNameTest: a __Host- XSRF cookie works end to end", async (t) => {
  expectLog(t);
  class Handler extends RequestHandler {
    get(): void { this.write(this.xsrfToken); }
    post(): void { this.write("ok"); }
  }
  const served = await serve(t, new Application([["/", Handler]], {
    xsrfCookies: true, xsrfCookieName: "__Host-xsrf", xsrfCookieOptions: { secure: true },
  }));
  const first = await fetch(served, "/");
  const setCookie = String(first.headers["set-cookie"]);
  t.match(setCookie, /^__Host-xsrf=/);
  t.match(setCookie, /Secure/);
  t.match(setCookie, /Path=\//);
  t.notMatch(setCookie, /Domain=/i);
  const token = first.text;
  // test_xsrf_fail_no_token
  t.equal((await fetch(served, "/", { method: "POST", body: "" })).code, 403);
  // test_xsrf_fail_body_no_cookie
  const body = `_xsrf=${encodeURIComponent(token)}`;
  const form = { "content-type": "application/x-www-form-urlencoded" };
  t.equal((await fetch(served, "/", { method: "POST", body, headers: form })).code, 403);
  // test_xsrf_success_post_body: the cookie is renamed, the argument is still _xsrf
  const ok = await fetch(served, "/", { method: "POST", body, headers: { ...form, cookie: `__Host-xsrf=${token}` } });
  t.equal(ok.code, 200);
  t.equal(ok.text, "ok");
  // A token sent back reuses the cookie: no new Set-Cookie.
  const again = await fetch(served, "/", { headers: { cookie: `__Host-xsrf=${token}` } });
  t.equal(again.headers["set-cookie"], undefined);
  // The old name is not consulted.
  const fresh = createXsrfToken().token;
  t.equal((await fetch(served, "/", { method: "POST", body: `_xsrf=${fresh}`, headers: { ...form, cookie: `_xsrf=${fresh}` } })).code, 403);
});

t.test("XSRFCookieKwargsTest: xsrfCookieOptions reach the cookie (httpOnly, expiresDays)", async (t) => {
  class Handler extends RequestHandler {
    get(): void { this.write(this.xsrfToken); }
  }
  const served = await serve(t, new Application([["/", Handler]], { xsrfCookies: true, xsrfCookieOptions: { httpOnly: true, expiresDays: 2 } }));
  const header = String((await fetch(served, "/")).headers["set-cookie"]);
  t.match(header.toLowerCase(), /httponly;/);
  const expires = /expires=([^;]+);/i.exec(header);
  t.ok(expires);
  const delta = Date.parse(expires![1]!) - (Date.now() + 2 * 86_400_000);
  t.ok(Math.abs(delta) < 10_000, "expires in two days");
});

t.test("ErrorHandlerXSRFTest: with XSRF on, ErrorHandler and 404 keep their status for POST", async (t) => {
  expectLog(t);
  const served = await serve(t, new Application([["/error", ErrorHandler, { statusCode: 417 }]], { xsrfCookies: true }));
  t.equal((await fetch(served, "/error", { method: "POST", body: "" })).code, 417);
  t.equal((await fetch(served, "/404", { method: "POST", body: "" })).code, 404);
});

// ---- Hosts and static URLs --------------------------------------------------------------------

class Reply extends RequestHandler {
  #reply = "";
  override initialize(reply?: unknown): void { this.#reply = String(reply); }
  get(): void { this.write(this.#reply); }
}

t.test("HostMatchingTest: host rules first, then the rules without a host", async (t) => {
  expectLog(t);
  const app = new Application([["/foo", Reply, "wildcard"]]);
  app.addHandlers("www.example.com", [["/foo", Reply, "[0]"]]);
  app.addHandlers("www\\.example\\.com", [["/bar", Reply, "[1]"]]);
  app.addHandlers("www.example.com", [["/baz", Reply, "[2]"]]);
  app.addHandlers("www.e.*e.com", [["/baz", Reply, "[3]"]]);
  const served = await serve(t, app);
  t.equal((await fetch(served, "/foo")).text, "wildcard");
  t.equal((await fetch(served, "/bar")).code, 404);
  t.equal((await fetch(served, "/baz")).code, 404);
  const host = (h: string): { headers: Record<string, string> } => ({ headers: { host: h } });
  t.equal((await fetch(served, "/foo", host("www.example.com"))).text, "[0]");
  t.equal((await fetch(served, "/bar", host("www.example.com"))).text, "[1]");
  t.equal((await fetch(served, "/baz", host("www.example.com"))).text, "[2]");
  t.equal((await fetch(served, "/baz", host("www.exe.com"))).text, "[3]");
});

t.test("DefaultHostMatchingTest: defaultHost serves its host rules to requests no host rule matches", async (t) => {
  expectLog(t);
  const app = new Application([], { defaultHost: "www.example.com" });
  app.addHandlers("www.example.com", [["/foo", Reply, "[0]"]]);
  app.addHandlers("www\\.example\\.com", [["/bar", Reply, "[1]"]]);
  app.addHandlers("www.test.com", [["/baz", Reply, "[2]"]]);
  const served = await serve(t, app);
  t.equal((await fetch(served, "/foo")).text, "[0]");
  t.equal((await fetch(served, "/bar")).text, "[1]");
  t.equal((await fetch(served, "/baz")).code, 404);
  t.equal((await fetch(served, "/baz", { headers: { host: "www.test.com" } })).text, "[2]");
  t.equal((await fetch(served, "/foo", { headers: { "x-real-ip": "127.0.0.1" } })).code, 404, "not through a proxy");
  app.settings.defaultHost = "www.test.com";
  t.equal((await fetch(served, "/baz")).text, "[2]");
  t.equal((await fetch(served, "/foo")).code, 404);
});

t.test("StaticFileTest.test_static_url / test_absolute_static_url / test_include_host_override", async (t) => {
  class StaticUrl extends RequestHandler {
    get(path: string): void {
      const include = this.getArgument("include_host", null);
      this.write(include === null ? this.staticUrl(path) : this.staticUrl(path, { includeHost: include === "1" }));
    }
  }
  const served = await serve(t, new Application([["/static_url/(.*)", StaticUrl]], { staticPath: STATIC }));
  t.match((await fetch(served, "/static_url/robots.txt")).text, /^\/static\/robots\.txt\?v=[0-9a-f]+$/);
  const absolute = (await fetch(served, "/static_url/robots.txt?include_host=1")).text;
  t.match(absolute, new RegExp(`^http://127\\.0\\.0\\.1:${served.port}/static/robots\\.txt\\?v=[0-9a-f]+$`));
  t.match((await fetch(served, "/static_url/robots.txt?include_host=0")).text, /^\/static\//);
});

// ---- decode_argument --------------------------------------------------------------------------

class DecodeArgHandler extends RequestHandler {
  override decodeArgument(value: Buffer | string, name?: string): string {
    if (typeof value === "string") return value;
    const encoding = new URLSearchParams(this.request.query).get("encoding") ?? "utf-8";
    if (name !== undefined && name !== "arg" && name !== "foo") throw new Error(`unexpected name ${name}`);
    return new TextDecoder(encoding).decode(value);
  }
  get(arg: unknown): void {
    const path = typeof arg === "string" ? arg : (arg as Record<string, string>)["arg"];
    this.write({ path, query: this.getArgument("foo") });
  }
}

class TypeCheck extends RequestHandler {
  get(component: string): void { this.write({ component, foo: this.getArgument("foo", null) }); }
}

t.test("WSGISafeWebTest.test_decode_argument: the decodeArgument hook decodes path groups and query arguments", async (t) => {
  const served = await serve(t, new Application([["/decode_arg/(.*)", DecodeArgHandler], ["/decode_arg_kw/(?<arg>.*)", DecodeArgHandler]]));
  for (const url of ["/decode_arg/%C3%A9?foo=%C3%A9&encoding=utf-8", "/decode_arg/%E9?foo=%E9&encoding=latin1", "/decode_arg_kw/%E9?foo=%E9&encoding=latin1"]) {
    const res = await fetch(served, url);
    t.equal(res.code, 200, url);
    t.same(JSON.parse(res.text), { path: "\u00e9", query: "\u00e9" }, url);
  }
});

t.test("WSGISafeWebTest.test_decode_argument_plus: + is a space in the query, not in the path", async (t) => {
  const served = await serve(t, new Application([["/decode_arg/(.*)", DecodeArgHandler]]));
  for (const url of ["/decode_arg/1%20%2B%201?foo=1%20%2B%201&encoding=utf-8", "/decode_arg/1%20+%201?foo=1+%2B+1&encoding=utf-8"]) {
    t.same(JSON.parse((await fetch(served, url)).text), { path: "1 + 1", query: "1 + 1" }, url);
  }
});

t.test("WSGISafeWebTest.test_decode_argument_invalid_unicode: invalid UTF-8 in a path or query is a 400, not a 500", async (t) => {
  expectLog(t);
  const served = await serve(t, new Application([["/typecheck/(.*)", TypeCheck]]));
  t.equal((await fetch(served, "/typecheck/invalid%FF")).code, 400);
  t.equal((await fetch(served, "/typecheck/invalid?foo=%FF")).code, 400);
  t.same(JSON.parse((await fetch(served, "/typecheck/ok?foo=%C3%A9")).text), { component: "ok", foo: "\u00e9" });
});

t.test("RequestEncodingTest.test_error: %25 then invalid UTF-8 is a 400 and is logged", async (t) => {
  const lines = expectLog(t);
  class Echo extends RequestHandler {
    get(): void { this.write({ arg: this.getArguments("arg") }); }
  }
  const served = await serve(t, new Application([["/group/(.*)", Echo]]));
  t.equal((await fetch(served, "/group/?arg=%25%e9")).code, 400);
  t.match(lines.join("\n"), /400/);
});

t.test("RequestEncodingTest.test_group_encoding / test_slashes: groups and arguments decode alike", async (t) => {
  class Echo extends RequestHandler {
    get(...args: string[]): void { this.write({ path: this.request.path, args, query: this.getArguments("arg") }); }
  }
  const served = await serve(t, new Application([["/group/(.*)", Echo], ["/slashes/([^/]*)/([^/]*)", Echo]]));
  t.same(JSON.parse((await fetch(served, "/group/%C3%A9?arg=%C3%A9")).text), { path: "/group/%C3%A9", args: ["\u00e9"], query: ["\u00e9"] });
  t.same(JSON.parse((await fetch(served, "/slashes/a%2Fb/c%2Fd")).text), { path: "/slashes/a%2Fb/c%2Fd", args: ["a/b", "c/d"], query: [] });
  t.same(JSON.parse((await fetch(served, "/group/%3F?%3F=%3F")).text).args, ["?"]);
});

// ---- Status reasons ---------------------------------------------------------------------------

class StatusReason extends RequestHandler {
  get(): void {
    const reason = this.getArgument("reason", null);
    throw new HTTPError(Number(this.getArgument("code")), undefined, reason === null ? {} : { reason });
  }
}

t.test("StatusReasonTest.test_status: known codes keep their phrase, unknown ones say Unknown", async (t) => {
  expectLog(t);
  const served = await serve(t, new Application([["/", StatusReason]]));
  const cases: [string, number, string][] = [
    ["/?code=304", 304, "Not Modified"], ["/?code=304&reason=Foo", 304, "Foo"],
    ["/?code=682&reason=Bar", 682, "Bar"], ["/?code=682", 682, "Unknown"],
  ];
  for (const [url, code, reason] of cases) {
    const res = await fetch(served, url);
    t.equal(res.code, code, url);
    t.equal(res.reason, reason, url);
  }
});

t.test("StatusReasonTest.test_header_injection: a reason with CR/LF becomes Unknown, nothing injected, no 500", async (t) => {
  expectLog(t);
  const served = await serve(t, new Application([["/", StatusReason]]));
  const { responses } = await exchange(served.port, "GET /?code=200&reason=OK%0D%0AX-Injection:injected HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  t.equal(responses[0]?.status, 200);
  t.equal(responses[0]?.reason, "Unknown");
  t.equal(responses[0]?.headers["x-injection"], undefined);
  t.notMatch(responses[0]?.head ?? "", /injected/);
});

t.test("StatusReasonTest.test_reason_xss: a reason with markup is never echoed", async (t) => {
  expectLog(t);
  const served = await serve(t, new Application([["/", StatusReason]]));
  const res = await fetch(served, `/?code=400&reason=${encodeURIComponent("<script>alert(1)</script>")}`);
  t.equal(res.code, 400);
  t.equal(res.reason, "Unknown");
  t.notMatch(res.text, /script/);
  t.match(res.text, /Unknown/);
});

t.test("RaiseWithReasonTest: HTTPError(682, reason Foo) sends that reason and page", async (t) => {
  expectLog(t);
  class Handler extends RequestHandler {
    get(): void { throw new HTTPError(682, undefined, { reason: "Foo" }); }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  const res = await fetch(served, "/");
  t.equal(res.code, 682);
  t.equal(res.reason, "Foo");
  t.match(res.text, /682: Foo/);
  t.equal(String(new HTTPError(682)).includes("682: Unknown"), true);
});

// ---- Headers, 304, compression ----------------------------------------------------------------

t.test("Header304Test: a 304 drops Content-Length, Content-Language and Content-Type", async (t) => {
  class Handler extends RequestHandler {
    get(): void {
      this.setHeader("Content-Language", "en_US");
      this.write("hello");
    }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  const first = await fetch(served, "/");
  t.equal(first.headers["content-length"], "5");
  t.equal(first.headers["content-language"], "en_US");
  const second = await fetch(served, "/", { headers: { "if-none-match": String(first.headers["etag"]) } });
  t.equal(second.code, 304);
  t.equal(second.headers["content-length"], undefined);
  t.equal(second.headers["content-language"], undefined);
  t.equal(second.headers["content-type"], undefined);
  t.equal(second.headers["transfer-encoding"], undefined);
});

t.test("Header204Test: a 204 has neither Content-Length nor Transfer-Encoding", async (t) => {
  class Handler extends RequestHandler {
    get(): void { this.setStatus(204); this.finish(); }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  const res = await fetch(served, "/");
  t.equal(res.code, 204);
  t.equal(res.headers["content-length"], undefined);
  t.equal(res.headers["transfer-encoding"], undefined);
});

function gunzip(body: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const z = createGunzip();
    const out: Buffer[] = [];
    z.on("data", (c: Buffer) => out.push(c));
    z.on("end", () => resolve(Buffer.concat(out).toString("utf8")));
    z.on("error", reject);
    z.end(body);
  });
}

class Gzip extends RequestHandler {
  get(): void {
    for (const v of this.getArguments("vary")) this.addHeader("Vary", v);
    this.write(`hello world${"!".repeat(1024)}`);
  }
}

t.test("GzipTestCase: compressed responses, Vary, and a small static file", async (t) => {
  const served = await serve(t, new Application([["/", Gzip]], { compressResponse: true, staticPath: STATIC }));
  const gzip = { headers: { "accept-encoding": "gzip" } };
  // test_gzip
  const res = await fetch(served, "/", gzip);
  t.equal(res.headers["content-encoding"], "gzip");
  t.equal(res.headers["vary"], "Accept-Encoding");
  t.match(await gunzip(res.body), /^hello world!/);
  // test_gzip_static: robots.txt is a few bytes, and still compressed.
  const robots = await fetch(served, "/robots.txt", gzip);
  t.equal(robots.headers["content-encoding"], "gzip");
  t.equal(robots.headers["vary"], "Accept-Encoding");
  t.match(await gunzip(robots.body), /Disallow/);
  // test_gzip_not_requested
  const plain = await fetch(served, "/");
  t.equal(plain.headers["content-encoding"], undefined);
  t.equal(plain.headers["vary"], "Accept-Encoding");
  // test_vary_already_present / test_vary_already_present_multiple
  const vary = (r: { headers: Record<string, string | string[] | undefined> }): string[] =>
    String(r.headers["vary"]).split(",").map((s) => s.trim());
  t.same(vary(await fetch(served, "/?vary=Accept-Language", gzip)), ["Accept-Language", "Accept-Encoding"]);
  t.same(vary(await fetch(served, "/?vary=Accept-Language&vary=Cookie", gzip)), ["Accept-Language", "Cookie", "Accept-Encoding"]);
});

t.test("GzipTestCase (ETag): compressed and uncompressed representations have different ETags, each revalidates", async (t) => {
  const served = await serve(t, new Application([["/", Gzip]], { compressResponse: true, staticPath: STATIC }));
  for (const path of ["/", "/robots.txt"]) {
    const plain = await fetch(served, path);
    const gz = await fetch(served, path, { headers: { "accept-encoding": "gzip" } });
    const br = await fetch(served, path, { headers: { "accept-encoding": "br" } });
    const tags = [plain, gz, br].map((r) => String(r.headers["etag"]));
    t.equal(new Set(tags).size, 3, `${path}: ${tags.join(" ")}`);
    const again = await fetch(served, path, { headers: { "accept-encoding": "gzip", "if-none-match": tags[1]! } });
    t.equal(again.code, 304, `${path}: the gzip ETag revalidates the gzip representation`);
    const mismatch = await fetch(served, path, { headers: { "if-none-match": tags[1]! } });
    t.equal(mismatch.code, 200, `${path}: the gzip ETag does not match the identity representation`);
  }
});

t.test("CacheTest: If-None-Match matching (wildcard, strong, weak, lists)", async (t) => {
  class EtagHandler extends RequestHandler {
    get(etag: string): void { this.write(etag); }
    override computeEtag(body: string | Buffer): string | null { return body.toString(); }
  }
  const served = await serve(t, new Application([["/etag/(.*)", EtagHandler]]));
  const cases: [string, string, string, number][] = [
    ["test_wildcard_etag", '"xyzzy"', "*", 304],
    ["test_strong_etag_match", '"xyzzy"', '"xyzzy"', 304],
    ["test_multiple_strong_etag_match", '"xyzzy1"', '"xyzzy1", "xyzzy2"', 304],
    ["test_strong_etag_not_match", '"xyzzy"', '"xyzzy1"', 200],
    ["test_multiple_strong_etag_not_match", '"xyzzy"', '"xyzzy1", "xyzzy2"', 200],
    ["test_weak_etag_match", '"xyzzy1"', 'W/"xyzzy1"', 304],
    ["test_multiple_weak_etag_match", '"xyzzy2"', 'W/"xyzzy1", W/"xyzzy2"', 304],
    ["test_weak_etag_not_match", '"xyzzy2"', 'W/"xyzzy1"', 200],
    ["test_multiple_weak_etag_not_match", '"xyzzy3"', 'W/"xyzzy1", W/"xyzzy2"', 200],
  ];
  for (const [name, computed, sent, code] of cases) {
    const res = await fetch(served, `/etag/${encodeURIComponent(computed)}`, { headers: { "if-none-match": sent } });
    t.equal(res.code, code, name);
  }
});

t.test("FinishExceptionTest: raising Finish sends what was set and written", async (t) => {
  class Handler extends RequestHandler {
    get(): void {
      this.setStatus(401);
      this.setHeader("WWW-Authenticate", 'Basic realm="something"');
      if (this.getArgument("finish_value", "")) throw new Finish("authentication required");
      this.write("authentication required");
      throw new Finish();
    }
  }
  const served = await serve(t, new Application([["/", Handler]]));
  for (const url of ["/", "/?finish_value=1"]) {
    const res = await fetch(served, url);
    t.equal(res.code, 401);
    t.equal(res.headers["www-authenticate"], 'Basic realm="something"');
    t.equal(res.text, "authentication required");
  }
});

// ---- Content-Length that disagrees with the body ----------------------------------------------

class TooHigh extends RequestHandler {
  get(): void {
    this.setHeader("Content-Length", "42");
    this.finish("ok");
  }
}
class TooLow extends RequestHandler {
  get(): void {
    this.setHeader("Content-Length", "2");
    this.finish("hello");
  }
}
class TooLowStreamed extends RequestHandler {
  async get(): Promise<void> {
    this.setHeader("Content-Length", "2");
    this.write("he");
    await this.flush();
    this.write("llo");
    this.finish();
  }
}
class Second extends RequestHandler {
  get(): void { this.write("second response"); }
}

function mismatchApp(): Application {
  return new Application([["/high", TooHigh], ["/low", TooLow], ["/low-streamed", TooLowStreamed], ["/second", Second]]);
}

t.test("IncorrectContentLengthTest.test_content_length_too_high: logged, the connection closed", async (t) => {
  const lines = expectLog(t);
  const served = await serve(t, mismatchApp());
  const result = await exchange(served.port, "GET /high HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n");
  t.equal(result.closed, true, "the server closed the connection");
  t.equal(result.responses.length, 0, "the client never sees the response complete");
  t.notMatch(result.raw, /second response/);
  t.match(lines.join("\n"), /Content-Length/);
});

for (const path of ["/low", "/low-streamed"]) {
  t.test(`IncorrectContentLengthTest.test_content_length_too_low (${path}): 5 bytes under Content-Length: 2 never desynchronise the next request`, async (t) => {
    const lines = expectLog(t);
    const served = await serve(t, mismatchApp());
    const result = await exchange(served.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n`);
    t.equal(result.responses[0]?.body.length ?? 2, 2, "the first response is never longer than its Content-Length");
    t.notMatch(result.raw, /llo/, "the extra bytes are never sent");
    if (result.responses.length > 1) {
      t.equal(result.responses[1]!.status, 200);
      t.equal(result.responses[1]!.body.toString(), "second response");
    } else {
      t.equal(result.closed, true, "or the connection is closed cleanly");
    }
    t.equal(result.rest, "", "nothing after the last complete response");
    t.match(lines.join("\n"), /Content-Length/);
    // Sequential requests on the same connection: the second one is not read as bytes of the first.
    const fresh = await exchange(served.port, ["GET /low HTTP/1.1\r\nHost: x\r\n\r\n", "GET /second HTTP/1.1\r\nHost: x\r\n\r\n"], { gap: 50 });
    t.notMatch(fresh.raw, /llo/);
    for (const r of fresh.responses.slice(1)) t.equal(r.body.toString(), "second response");
  });
}
