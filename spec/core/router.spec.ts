// The regex router on its own: anchoring, positional and named groups, first match wins across
// the literal/regex buckets, invalid patterns failing at add() with E_ROUTE_PATTERN, and reverse().
import t from "tap";
import { Router } from "../../core/web/router.ts";
import { ErrorCode, TyphoonError } from "../../core/errors.ts";

function table(rules: readonly (readonly [string | RegExp, string, string?])[]): Router<string> {
  const router = new Router<string>();
  for (const [pattern, target, name] of rules) router.add(pattern, target, name);
  return router;
}

function hit(router: Router<string>, path: string): string | null {
  return router.match(path)?.route.target ?? null;
}

t.test("string and RegExp rules are anchored at both ends", async (t) => {
  const r = table([["/users/\\d+", "string"], [/\/items\/\d+/, "regexp"], ["^/a$", "anchored"]]);
  t.equal(hit(r, "/users/42"), "string");
  t.equal(hit(r, "/users/42/edit"), null, "no match past the end");
  t.equal(hit(r, "/x/users/42"), null, "no match before the start");
  t.equal(hit(r, "/items/7"), "regexp");
  t.equal(hit(r, "/items/7x"), null);
  t.equal(hit(r, "/a"), "anchored", "explicit anchors are accepted");
  t.equal(hit(r, "/ab"), null);
});

t.test("positional groups come back raw and in order, an optional miss is undefined", async (t) => {
  const r = table([["/p/(\\d+)/(\\w+)", "two"], ["/o/(\\d+)?/?(x)?", "optional"]]);
  t.same(r.match("/p/12/ab")?.groups, ["12", "ab"]);
  const m = r.match("/o/");
  t.equal(m?.route.target, "optional");
  t.equal(m?.groups.length, 2);
  t.equal(m?.groups[0], undefined);
  t.equal(m?.groups[1], undefined);
  t.same(r.match("/o/5/x")?.groups, ["5", "x"]);
});

t.test("named groups come back in pattern order with their names", async (t) => {
  const r = table([["/u/(?<user>\\w+)/(?<post>\\d+)", "named"]]);
  const m = r.match("/u/ann/3");
  t.same(m?.route.groupNames, ["user", "post"]);
  t.same(m?.groups, ["ann", "3"]);
});

t.test("groups are matched against the still percent-encoded path", async (t) => {
  const r = table([["/f/([^/]+)", "file"]]);
  t.same(r.match("/f/a%2Fb")?.groups, ["a%2Fb"]);
  t.equal(hit(r, "/f/a/b"), null);
});

t.test("mixing named and positional groups throws E_ROUTE_PATTERN naming the pattern", async (t) => {
  const r = new Router<string>();
  const err = t.throws(() => r.add("/m/(?<a>\\d+)/(\\d+)", "x")) as TyphoonError;
  t.equal(err.code, ErrorCode.ROUTE_PATTERN);
  t.match(err.message, "/m/(?<a>\\d+)/(\\d+)");
});

t.test("an invalid regular expression throws E_ROUTE_PATTERN naming the pattern", async (t) => {
  for (const bad of ["/x/(unclosed", "/y/[z", "/w/a**"]) {
    const err = t.throws(() => new Router<string>().add(bad, "x")) as TyphoonError;
    t.ok(err instanceof TyphoonError, bad);
    t.equal(err.code, ErrorCode.ROUTE_PATTERN, bad);
    t.ok(err.message.includes(bad), `message names ${bad}`);
  }
});

t.test("first match wins between literal and regex rules of the same bucket", async (t) => {
  const r = table([["/users/(\\w+)", "regex-first"], ["/users/me", "literal-second"]]);
  t.equal(hit(r, "/users/me"), "regex-first");
  const s = table([["/users/me", "literal-first"], ["/users/(\\w+)", "regex-second"]]);
  t.equal(hit(s, "/users/me"), "literal-first");
  t.equal(hit(s, "/users/you"), "regex-second");
});

t.test("first match wins across rules with and without a literal first segment", async (t) => {
  const r = table([
    ["/(\\w+)/special", "unkeyed-first"],
    ["/users/special", "keyed-later"],
    ["/users/(\\d+)", "keyed"],
    [".*", "catch-all"],
    ["/users/other", "after-catch-all"],
  ]);
  t.equal(hit(r, "/users/special"), "unkeyed-first", "an earlier unkeyed rule beats a later keyed one");
  t.equal(hit(r, "/users/12"), "keyed");
  t.equal(hit(r, "/users/other"), "catch-all", "a catch-all placed before a literal wins");
  t.equal(hit(r, "/nothing/here"), "catch-all", "a path with no bucket still tries unkeyed rules");
  t.equal(hit(r, "/"), "catch-all");
});

t.test("a keyed rule placed before an unkeyed one wins for its bucket only", async (t) => {
  const r = table([["/api/v1", "keyed"], ["/(api|web)/v1", "alternation"], ["/a|/b", "top-level-alt"]]);
  t.equal(hit(r, "/api/v1"), "keyed");
  t.equal(hit(r, "/web/v1"), "alternation");
  t.equal(hit(r, "/a"), "top-level-alt", "a top-level alternation is anchored as a whole");
  t.equal(hit(r, "/b"), "top-level-alt");
  t.equal(hit(r, "/ab"), null);
});

t.test("case-insensitive RegExp rules match across buckets and keep their order", async (t) => {
  const r = table([["/Users/me", "exact-case"], [/\/users\/(\w+)/i, "insensitive"], ["/users/x", "later"]]);
  t.equal(hit(r, "/Users/me"), "exact-case");
  t.equal(hit(r, "/USERS/bob"), "insensitive");
  t.equal(hit(r, "/users/x"), "insensitive", "the earlier insensitive rule wins over a later literal");
  t.same(r.match("/uSeRs/Zed")?.groups, ["Zed"]);
});

t.test("the root, escaped punctuation and quantified literals route correctly", async (t) => {
  const r = table([["/", "root"], ["/a\\.b", "escaped-dot"], ["/ab?", "optional-b"], ["/health", "health"], ["/c/", "slash"]]);
  t.equal(hit(r, "/"), "root");
  t.equal(hit(r, "/a.b"), "escaped-dot");
  t.equal(hit(r, "/aXb"), null, "an escaped dot is a literal dot");
  t.equal(hit(r, "/a"), "optional-b");
  t.equal(hit(r, "/ab"), "optional-b");
  t.equal(hit(r, "/health"), "health");
  t.equal(hit(r, "/healthz"), null);
  t.equal(hit(r, "/c/"), "slash");
  t.equal(hit(r, "/c"), null);
  t.equal(hit(r, ""), null);
});

t.test("rules added after a match are still found (the table is rebuilt)", async (t) => {
  const r = table([["/one", "one"]]);
  t.equal(hit(r, "/two"), null);
  r.add("/two", "two");
  t.equal(hit(r, "/two"), "two");
  t.equal(r.routes.length, 2);
});

t.test("many rules: each path finds its own rule, in order", async (t) => {
  const r = new Router<string>();
  for (let i = 0; i < 500; i++) r.add(`/r${i}/(\\d+)`, `rule${i}`);
  r.add("/r250/7", "shadowed");
  t.equal(hit(r, "/r0/1"), "rule0");
  t.equal(hit(r, "/r499/9"), "rule499");
  t.equal(hit(r, "/r250/7"), "rule250");
  t.equal(hit(r, "/r500/1"), null);
});

t.test("reverse fills positional groups, percent-encoding each argument but keeping /", async (t) => {
  const r = table([["/u/(\\d+)/f/(.+)", "u", "user-file"], ["/", "root", "root"], ["/a\\.b/(\\w+)", "esc", "escaped"]]);
  t.equal(r.reverse("user-file", [7, "dir/a b&c?é"]), "/u/7/f/dir/a%20b%26c%3F%C3%A9");
  t.equal(r.reverse("user-file", [1, "it's(*)!"]), "/u/1/f/it%27s%28%2A%29%21", "Python quote() escapes !'()*");
  t.equal(r.reverse("root", []), "/");
  t.equal(r.reverse("escaped", ["x"]), "/a.b/x");
});

t.test("reverse fills named groups from an object or positionally", async (t) => {
  const r = table([["/u/(?<user>\\w+)/(?<post>\\d+)", "n", "post"]]);
  t.equal(r.reverse("post", [{ post: 3, user: "ann" }]), "/u/ann/3");
  t.equal(r.reverse("post", ["bob", 4]), "/u/bob/4");
});

t.test("reverse errors carry E_REVERSE_URL", async (t) => {
  const r = table([
    ["/u/(\\d+)", "u", "user"], ["/x+/(\\d+)", "x", "irreversible"], ["/y/(\\d+)?", "y", "quantified"],
    ["/z/(?:a)/(\\d+)", "z", "non-capturing"], ["/n/((\\d+)-(\\d+))", "n", "nested"],
  ]);
  for (const [name, args, text] of [
    ["nope", [], "no rule is named"],
    ["user", [], "takes 1 argument, got 0"],
    ["user", [1, 2], "takes 1 argument, got 2"],
    ["irreversible", [1], "cannot be reversed"],
    ["quantified", [1], "cannot be reversed"],
    ["non-capturing", [1], "cannot be reversed"],
    ["nested", ["1-2"], "cannot be reversed"],
  ] as const) {
    const err = t.throws(() => r.reverse(name, args)) as TyphoonError;
    t.equal(err.code, ErrorCode.REVERSE_URL, `${name}(${args.length})`);
    t.match(err.message, text);
  }
  t.ok(r.has("user"));
  t.notOk(r.has("nope"));
});
