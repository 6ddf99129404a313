// Users over real sockets: getCurrentUser() sync and async (lazy, as in Tornado: run on the
// first read of currentUser, or awaited with resolveCurrentUser()), the cached currentUser,
// assigning it in prepare(), a signed-cookie login, and @authenticated on top of each, as in
// Tornado's AuthenticatedTest.
import t from "tap";
import { Application } from "../../core/web/app.ts";
import { authenticated } from "../../core/web/decorators.ts";
import { RequestHandler } from "../../core/web/handler.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog, type LogLine } from "../helpers/log.ts";
import { rawRequest } from "../handlers/raw-request.ts";
import type { Test } from "tap";

let calls = 0;

class SyncUserHandler extends RequestHandler {
  override getCurrentUser(): string | null {
    calls++;
    return this.getArgument("user", null);
  }
  get(): void {
    this.write({ first: this.currentUser, second: this.currentUser, calls });
  }
}

class AsyncUserHandler extends RequestHandler {
  #seenInPrepare: unknown = undefined;
  override async getCurrentUser(): Promise<{ name: string } | null> {
    await new Promise((r) => setTimeout(r, 5));
    const name = this.getArgument("user", null);
    return name === null ? null : { name };
  }
  override async prepare(): Promise<void> {
    this.#seenInPrepare = await this.resolveCurrentUser();
  }
  @authenticated
  get(): void {
    this.write({ prepare: this.#seenInPrepare, get: this.currentUser });
  }
  @authenticated
  post(): void {
    this.write({ posted: this.currentUser });
  }
}

class AssignedUserHandler extends RequestHandler {
  override async prepare(): Promise<void> {
    await Promise.resolve();
    this.currentUser = this.request.headers["x-user"] ?? null;
  }
  @authenticated
  get(): void {
    this.write(`hi ${String(this.currentUser)}`);
  }
}

class DefaultUserHandler extends RequestHandler {
  get(): void {
    this.write({ user: this.currentUser });
  }
}

class LoginHandler extends RequestHandler {
  post(): void {
    this.setSignedCookie("user", this.getArgument("name"));
    this.write("logged in");
  }
}

class CookieUserHandler extends RequestHandler {
  override getCurrentUser(): string | null {
    return this.getSignedCookie("user");
  }
  @authenticated
  get(): void {
    this.write(`welcome ${String(this.currentUser)}`);
  }
}

class ThrowingUserHandler extends RequestHandler {
  override getCurrentUser(): never {
    throw new Error("user store down");
  }
  get(): void {
    this.write(this.getArgument("read", null) === null ? "never read" : String(this.currentUser));
  }
}

class UnresolvedAsyncUserHandler extends RequestHandler {
  override async getCurrentUser(): Promise<string> {
    return "late";
  }
  get(): void {
    this.write(String(this.currentUser));
  }
}

let logged: LogLine[] = [];

async function serve(t: Test, settings: Record<string, unknown> = { loginUrl: "/login", cookieSecret: "0123456789abcdef" }): Promise<string> {
  logged = captureLog(t);
  const app = new Application([
    ["/sync", SyncUserHandler], ["/relative", AsyncUserHandler], ["/assigned", AssignedUserHandler],
    ["/default", DefaultUserHandler], ["/login", LoginHandler], ["/account", CookieUserHandler], ["/throwing", ThrowingUserHandler],
    ["/unresolved", UnresolvedAsyncUserHandler],
  ], settings);
  const { port } = await listen(t, app);
  return `http://127.0.0.1:${port}`;
}

t.test("sync getCurrentUser(): currentUser is its value, computed once per request", async (t) => {
  const base = await serve(t);
  calls = 0;
  t.same(JSON.parse((await rawRequest(base, "/sync?user=ann")).text()), { first: "ann", second: "ann", calls: 1 });
  t.same(JSON.parse((await rawRequest(base, "/sync")).text()), { first: null, second: null, calls: 2 });
});

t.test("async getCurrentUser() is awaited with resolveCurrentUser(); currentUser is null without an override", async (t) => {
  const base = await serve(t);
  const r = await rawRequest(base, "/relative?user=bob");
  t.equal(r.status, 200);
  t.same(JSON.parse(r.text()), { prepare: { name: "bob" }, get: { name: "bob" } });
  t.same(JSON.parse((await rawRequest(base, "/default")).text()), { user: null });
});

t.test("@authenticated with an async getCurrentUser redirects to /login?next=%2Frelative; POST would be 403", async (t) => {
  const base = await serve(t);
  const r = await rawRequest(base, "/relative");
  t.equal(r.status, 302);
  t.equal(r.headers.location, "/login?next=%2Frelative");
  const post = await rawRequest(base, "/relative", { method: "POST" });
  t.equal(post.status, 403, "POST without a user is a 403");
  t.equal(post.headers.location, undefined, "and no redirect");
  const signedIn = await rawRequest(base, "/relative?user=bob", { method: "POST" });
  t.equal(signedIn.status, 200, "POST with a user runs the method");
  t.same(JSON.parse(signedIn.text()), { posted: { name: "bob" } });
});

t.test("currentUser assigned in prepare() is what @authenticated sees", async (t) => {
  const base = await serve(t);
  t.equal((await rawRequest(base, "/assigned", { headers: { "X-User": "cat" } })).text(), "hi cat");
  t.equal((await rawRequest(base, "/assigned")).status, 302);
});

t.test("a signed-cookie login: the cookie set by one request authenticates the next; a forged one does not", async (t) => {
  const base = await serve(t);
  const login = await rawRequest(base, "/login", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "name=dee" });
  const cookie = login.headers["set-cookie"]![0]!.split(";")[0]!;
  t.match(cookie, /^user="?2\|1:0\|10:\d+\|4:user\|4:ZGVl\|[0-9a-f]{64}"?$/);
  const account = await rawRequest(base, "/account", { headers: { Cookie: cookie } });
  t.equal(account.status, 200);
  t.equal(account.text(), "welcome dee");
  const forged = cookie.replace("ZGVl", "ZXZl");
  t.equal((await rawRequest(base, "/account", { headers: { Cookie: forged } })).status, 302, "a tampered cookie is no user");
});

t.test("a getCurrentUser() that throws is a 500 once currentUser is read (lazy: never read, never run)", async (t) => {
  const base = await serve(t, {});
  const throwing = await rawRequest(base, "/throwing?read=1");
  t.equal(throwing.status, 500);
  const errors = (from: number): string[] => logged.slice(from).filter((l) => l.level === "error").map((l) => l.message);
  t.ok(errors(0).some((m) => m.includes("/throwing") && m.includes("user store down")),
    "the failing getCurrentUser() is logged as an error naming the request and what it threw");
  const unread = await rawRequest(base, "/throwing");
  t.equal(unread.status, 200);
  t.equal(unread.text(), "never read");
  const before = logged.length;
  t.equal((await rawRequest(base, "/relative")).status, 500, "@authenticated without loginUrl is a 500");
  t.ok(errors(before).some((m) => m.includes("/relative") && m.includes("loginUrl")),
    "the missing loginUrl is logged as an error naming the request and the setting");
});

t.test("reading currentUser while an async getCurrentUser() is unresolved is a 500 with E_CURRENT_USER_ASYNC logged", async (t) => {
  const base = await serve(t);
  const lines = captureLog(t);
  t.equal((await rawRequest(base, "/unresolved")).status, 500);
  t.match(lines.map((l) => l.message).join("\n"), /resolveCurrentUser/);
});
