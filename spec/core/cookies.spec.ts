// Cookie headers: Tornado's parse (parse_cookie + SimpleCookie's key filter) and Set-Cookie
// output (set_cookie through Morsel), its own test cases, header-injection safety, and a live
// cross-check against Tornado itself when Debian's python3-tornado is installed.
import t from "tap";
import { spawnSync } from "node:child_process";
import { formatHttpDate, parseCookies, serializeCookie } from "../../core/http/cookies.ts";
import type { CookieOptions } from "../../core/http/cookies.ts";

const plain = (header: string | undefined): Record<string, string> => ({ ...parseCookies(header) });

t.test("Tornado's Set-Cookie outputs: plain, domain and path, max age, flags", async (t) => {
  t.equal(serializeCookie("str", "asdf"), "str=asdf; Path=/");
  t.equal(serializeCookie("unicode_args", "blah", { domain: "foo.com", path: "/foo" }), "unicode_args=blah; Domain=foo.com; Path=/foo");
  t.equal(serializeCookie("foo", "bar", { maxAge: 10 }), "foo=bar; Max-Age=10; Path=/");
  t.equal(serializeCookie("a", "1", { secure: true }), "a=1; Path=/; Secure");
  t.equal(serializeCookie("b", "1", { secure: false }), "b=1; Path=/");
  t.equal(serializeCookie("c", "1", { httpOnly: true }), "c=1; HttpOnly; Path=/");
  t.equal(serializeCookie("d", "1", { httpOnly: false }), "d=1; Path=/");
});

t.test("attributes come in Morsel's sorted order", async (t) => {
  t.equal(serializeCookie("a", "b", { secure: true, sameSite: "Lax", path: "/p", maxAge: 0, httpOnly: true,
    expires: new Date(Date.UTC(2013, 0, 27, 18, 43, 20)), domain: "example.com" }),
  "a=b; Domain=example.com; expires=Sun, 27 Jan 2013 18:43:20 GMT; HttpOnly; Max-Age=0; Path=/p; SameSite=Lax; Secure");
  t.equal(serializeCookie("a", "b", { sameSite: "strict" }), "a=b; Path=/; SameSite=strict", "SameSite written as given");
  t.equal(serializeCookie("a", "b", { path: "" }), "a=b", "an empty path leaves Path out");
  t.equal(serializeCookie("a", "b", { domain: "" }), "a=b; Path=/", "an empty domain leaves Domain out");
});

t.test("values needing quotes are quoted with Python's escapes", async (t) => {
  t.equal(serializeCookie("equals", "a=b"), 'equals="a=b"; Path=/');
  t.equal(serializeCookie("quote", 'a"b'), 'quote="a\\"b"; Path=/');
  t.equal(serializeCookie("semicolon", "a;b"), 'semicolon="a\\073b"; Path=/');
  t.equal(serializeCookie("comma", "a,b"), 'comma="a\\054b"; Path=/');
  t.equal(serializeCookie("slash", "a\\b/()"), 'slash="a\\\\b/()"; Path=/');
  t.equal(serializeCookie("latin", "é\x7f"), 'latin="\\351\\177"; Path=/');
  t.equal(serializeCookie("empty", ""), 'empty=""; Path=/', "an empty value is quoted, as Python does");
  t.equal(serializeCookie("colon:ok", "x:y|z~"), "colon:ok=x:y|z~; Path=/", "token characters are left alone");
});

t.test("a quoted value reads back to the original", async (t) => {
  for (const value of ["a=b", 'a"b', "a;b", "a,b", "a\\b", "é", "", "[{<>}]?@", "\\073"]) {
    const header = serializeCookie("k", value).split("; ")[0] ?? "";
    t.equal(parseCookies(header)["k"], value, JSON.stringify(value));
  }
});

t.test("expires: a Date, milliseconds, a string, or expiresDays from now", async (t) => {
  t.equal(serializeCookie("a", "b", { expires: 1359312200000 }), "a=b; expires=Sun, 27 Jan 2013 18:43:20 GMT; Path=/");
  t.equal(serializeCookie("a", "b", { expires: 0 }), "a=b; expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/");
  t.equal(serializeCookie("a", "b", { expires: "Wed, 21 Oct 2015 07:28:00 GMT" }), "a=b; expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/");
  const header = serializeCookie("foo", "bar", { expiresDays: 10 });
  const m = /^foo=bar; expires=(.+); Path=\/$/.exec(header);
  t.ok(m, header);
  const expected = Date.now() + 10 * 86_400_000;
  t.ok(Math.abs(Date.parse(m?.[1] ?? "") - expected) < 10_000, "ten days from now");
  t.equal(serializeCookie("a", "b", { expires: 1359312200000, expiresDays: 10 }), "a=b; expires=Sun, 27 Jan 2013 18:43:20 GMT; Path=/",
    "expires wins over expiresDays");
  t.match(serializeCookie("a", "b", { expires: "", expiresDays: -365 }), /^a=b; expires=\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT; Path=\/$/);
});

t.test("formatHttpDate is RFC 7231's IMF-fixdate", async (t) => {
  t.equal(formatHttpDate(new Date(1359312200000)), "Sun, 27 Jan 2013 18:43:20 GMT");
  t.equal(formatHttpDate(new Date(Date.UTC(999, 2, 5, 1, 2, 3))), "Tue, 05 Mar 0999 01:02:03 GMT");
  t.throws(() => formatHttpDate(new Date(Number.NaN)), { code: "E_INVALID_COOKIE" });
  t.throws(() => formatHttpDate(new Date(Date.UTC(10000, 0, 1))), { code: "E_INVALID_COOKIE" });
});

t.test("invalid names throw E_INVALID_COOKIE", async (t) => {
  for (const name of ["", "a b", "a;b", "a=b", "a,b", 'a"b', "a\tb", "a\r\nSet-Cookie: x", "é", "a\x00", "a\x7f",
    "a/b", "a[b]", "expires", "Path", "DOMAIN", "max-age", "Secure", "httponly", "version", "comment", "SameSite"]) {
    t.throws(() => serializeCookie(name, "v"), { code: "E_INVALID_COOKIE" }, JSON.stringify(name));
  }
});

t.test("invalid values and option values throw E_INVALID_COOKIE", async (t) => {
  for (const value of ["a b", "a\tb", "a\r\nSet-Cookie: evil=1", "a\nb", "\x00", "a\x1fb", "€", "😀"]) {
    t.throws(() => serializeCookie("k", value), { code: "E_INVALID_COOKIE" }, JSON.stringify(value));
  }
  const bad: CookieOptions[] = [
    { domain: "a.com; Secure" }, { domain: "a.com\r\nX: y" }, { path: "/\n" }, { path: "/;HttpOnly" }, { path: "/€" },
    { expires: "x; Domain=evil" }, { expires: new Date(Number.NaN) }, { expiresDays: Number.NaN }, { maxAge: 1.5 },
    { maxAge: Number.POSITIVE_INFINITY }, { sameSite: "Lax; Secure" as "Lax" },
  ];
  for (const options of bad) t.throws(() => serializeCookie("k", "v", options), { code: "E_INVALID_COOKIE" }, JSON.stringify(options));
  t.throws(() => serializeCookie("k", "v".repeat(4000)), { code: "E_INVALID_COOKIE" }, "over 4000 bytes");
  t.doesNotThrow(() => serializeCookie("k", "v".repeat(3990)), "just under 4000 bytes");
});

t.test("no input can make a Set-Cookie value that splits the header or adds an attribute", async (t) => {
  // Every character up to U+017F in each position: the call throws, or its output has no
  // control character and exactly the attributes asked for.
  let checked = 0;
  for (let c = 0; c <= 0x17f; c++) {
    const ch = String.fromCharCode(c);
    const attempts: [string, string, CookieOptions][] = [
      [`n${ch}`, "v", {}], ["n", `v${ch}v`, {}], ["n", "v", { domain: `d${ch}d` }], ["n", "v", { path: `/${ch}` }],
      ["n", "v", { expires: `x${ch}` }],
    ];
    for (const [name, value, options] of attempts) {
      let header: string;
      try {
        header = serializeCookie(name, value, options);
      } catch (error) {
        if ((error as { code?: unknown }).code !== "E_INVALID_COOKIE") throw error;
        continue;
      }
      checked++;
      if (/[\x00-\x1f\x7f]|[^\x00-\xff]/.test(header)) t.fail(`control or non-Latin-1 character in ${JSON.stringify(header)}`);
      const segments = header.split(";").length;
      const wanted = 2 + (options.domain === undefined ? 0 : 1) + (options.expires === undefined ? 0 : 1);
      if (segments !== wanted) t.fail(`${JSON.stringify(header)} has ${segments} segments, not ${wanted}`);
    }
  }
  t.ok(checked > 500, `${checked} headers produced and checked`);
});

t.test("parse: Python's own cookie cases, as Tornado's request.cookies sees them", async (t) => {
  t.same(plain("chips=ahoy; vienna=finger"), { chips: "ahoy", vienna: "finger" });
  // Every ";" is a delimiter, even inside quotes; the nameless '"' chunk is dropped.
  t.same(plain('keebler="E=mc2; L=\\"Loves\\"; fudge=\\012;"'), { keebler: '"E=mc2', L: '\\"Loves\\"', fudge: "\\012" });
  t.same(plain("keebler=E=mc2"), { keebler: "E=mc2" });
  t.same(plain("key:term=value:term"), { "key:term": "value:term" });
  t.same(plain("a=b; c=[; d=r; f=h"), { a: "b", c: "[", d: "r", f: "h" });
});

t.test("parse: the last of two same-named cookies wins; attribute names and non-tokens are dropped", async (t) => {
  t.same(plain("a=b; h=i; a=c"), { a: "c", h: "i" });
  t.same(plain("a=b; Domain=example.com; path=/; Expires=x; max-age=1; SECURE=1; samesite=1"), { a: "b" });
  t.same(plain("abc=def; unnamed; django_language=en"), { abc: "def", django_language: "en" });
  t.same(plain('a=b; "; c=d'), { a: "b", c: "d" });
  t.same(plain("a b c=d e = f; gh=i"), { gh: "i" });
  t.same(plain('a   b,c<>@:/[]?{}=d  "  =e,f g'), {});
  t.same(plain("saint=André Bessette"), { saint: "André Bessette" });
  t.same(plain("  =  b  ;  ;  =  ;   c  =  ;  "), { c: "" });
  t.same(plain("/=exception;"), {});
  t.same(plain("a=\x1c\x85b\xa0\t"), { a: "b" }, "Python's whitespace is stripped");
  t.same(plain("a=\ufeffb"), { a: "\ufeffb" }, "a BOM is not Python whitespace");
});

t.test("parse: quoted values are unescaped only inside double quotes", async (t) => {
  const cases: [string, string][] = [
    ['a="b=\\""', 'b="'], ['a="b=\\\\"', "b=\\"], ['a="b=\\="', "b=="], ['a="b=\\n"', "b=n"], ['a="b=\\042"', 'b="'],
    ['a="b=\\134"', "b=\\"], ['a="b=\\377"', "b=\xff"], ['a="b=\\400"', "b=400"], ['a="b=\\42"', "b=42"],
    ['a="b=\\\\042"', "b=\\042"], ['a="b=\\\\134"', "b=\\134"], ['a="b=\\\\\\""', 'b=\\"'], ['a="b=\\\\\\042"', 'b=\\"'],
    ['a="b=\\134\\""', 'b=\\"'], ['a="b=\\134\\042"', 'b=\\"'],
    ["foo=a=b", "a=b"], ['foo="a=b"', "a=b"], ['foo="a;b"', '"a'], ["foo=a\\073b", "a\\073b"], ['foo="a\\073b"', "a;b"],
    ['foo="a\\"b"', 'a"b'], ['foo="', '"'], ['foo=""', ""], ['foo="a', '"a'],
  ];
  for (const [header, value] of cases) t.equal(Object.values(parseCookies(header))[0], value, header);
});

t.test("parse: a long escaped value is unquoted in linear time", async (t) => {
  const start = performance.now();
  for (const escape of ["\\\\", "\\134"]) t.equal(parseCookies(`a="b=${escape.repeat(100_000)}"`)["a"], `b=${"\\".repeat(100_000)}`);
  // Linear takes milliseconds; quadratic on 100 000 escapes takes minutes: a bound far from both.
  t.ok(performance.now() - start < 5000, `well under five seconds (${Math.round(performance.now() - start)} ms)`);
});

t.test("parse: a null-prototype result that no cookie name can pollute", async (t) => {
  const cookies = parseCookies("__proto__=x; constructor=y; toString=z; hasOwnProperty=w");
  t.equal(Object.getPrototypeOf(cookies), null);
  t.same(Object.keys(cookies), ["__proto__", "constructor", "toString", "hasOwnProperty"]);
  t.equal(cookies["__proto__"], "x");
  t.equal(({} as Record<string, unknown>)["x"], undefined, "Object.prototype untouched");
  t.equal(parseCookies("a=1")["toString"], undefined, "no inherited names");
  t.same(plain(undefined), {});
  t.same(plain(""), {});
});

t.test("parse never throws on garbage", async (t) => {
  let seed = 12345;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
  const alphabet = ['"', "\\", ";", "=", " ", ",", "a", "0", "\x00", "\n", "\r", "\xff", "é", "\u2028", "\ud800", "7", "3"];
  for (let i = 0; i < 3000; i++) {
    let header = "";
    const length = next() % 40;
    for (let j = 0; j < length; j++) header += alphabet[next() % alphabet.length];
    const cookies = parseCookies(header);
    for (const name of Object.keys(cookies)) {
      if (!/^[A-Za-z0-9!#$%&'*+\-.^_`|~:]+$/.test(name)) t.fail(`non-token name ${JSON.stringify(name)} from ${JSON.stringify(header)}`);
    }
  }
  t.pass("3000 random headers parsed");
});

// ---- Live interop with Tornado (Debian python3-tornado under /usr/bin/python3) ----

const PYTHON = "/usr/bin/python3";
const tornadoAvailable = spawnSync(PYTHON, ["-c", "import tornado.web"], { timeout: 10_000 }).status === 0;

const INTEROP = String.raw`
import json, sys
from unittest import mock
from tornado.web import Application, RequestHandler
from tornado.httputil import HTTPServerRequest, HTTPHeaders
inp = json.load(sys.stdin)
def handler(cookie=None):
    h = HTTPHeaders()
    if cookie is not None: h["Cookie"] = cookie
    return RequestHandler(Application(), HTTPServerRequest(method="GET", uri="/", headers=h, connection=mock.Mock()))
out = {"parsed": [], "serialized": []}
for header in inp["parse"]:
    out["parsed"].append({k: m.value for k, m in handler(header).cookies.items()})
for name, value, kwargs in inp["serialize"]:
    h = handler()
    try:
        h.set_cookie(name, value, **kwargs)
        out["serialized"].append([m.OutputString(None) for m in h._new_cookie.values()][0])
    except Exception:
        out["serialized"].append(None)
json.dump(out, sys.stdout)
`;

t.test("Tornado itself parses Cookie headers and writes Set-Cookie values as we do",
  tornadoAvailable ? {} : { skip: "python3-tornado is not installed (/usr/bin/python3 -c 'import tornado' failed)" },
  async (t) => {
    const headers = ["a=1; b=2; a=3", 'k="x\\073y\\"z"; path=/; Domain=d', " =x; y ; z=\t1\t; ~:!=ok", 'q="a;b"; r="\\400\\12"',
      "a=\x1c\x85b\xa0", "x=é; y=\"\\351\""];
    const expires = 1359312200;
    const writes: [string, string, Record<string, unknown>, CookieOptions][] = [
      ["a", "b", {}, {}],
      ["a", 'x;y,z"\\é\x7f=', {}, {}],
      ["a", "", { path: "" }, { path: "" }],
      ["a", "b", { domain: "example.com", path: "/p", expires, max_age: 10, httponly: true, secure: true, samesite: "Lax" },
        { domain: "example.com", path: "/p", expires: expires * 1000, maxAge: 10, httpOnly: true, secure: true, sameSite: "Lax" }],
      ["a", "b", { max_age: 0, httponly: false, secure: false }, { maxAge: 0, httpOnly: false, secure: false }],
      ["a b", "v", {}, {}], ["n", "v w", {}, {}], ["Path", "v", {}, {}], ["", "v", {}, {}], ["n", "a\r\nX: y", {}, {}],
    ];
    const run = spawnSync(PYTHON, ["-c", INTEROP], {
      input: JSON.stringify({ parse: headers, serialize: writes.map(([n, v, kw]) => [n, v, kw]) }), timeout: 20_000, encoding: "utf8",
    });
    t.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { parsed: Record<string, string>[]; serialized: (string | null)[] };
    t.same(result.parsed, headers.map(plain), "the same cookies from the same headers");
    const ours = writes.map(([name, value, , options]) => {
      try {
        return serializeCookie(name, value, options);
      } catch {
        return null;
      }
    });
    t.same(ours, result.serialized, "the same Set-Cookie values, and the same refusals");
  });
