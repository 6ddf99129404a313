// Signed values and XSRF tokens: Tornado's published vectors (tornado/test/web_test.py,
// SignedValueTest), tampering, expiry, key rotation, and a live cross-check against Tornado
// itself when Debian's python3-tornado is installed.
import t from "tap";
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import {
  createSignedValue, createXsrfToken, decodeSignedValue, decodeXsrfToken, getSignatureKeyVersion, xsrfTokensMatch,
} from "../../core/http/signing.ts";

const SECRET = "It's a secret to everybody";
const SECRET_DICT = { 0: "asdfbasdf", 1: "12312312", 2: "2342342" };
const present = (): number => 1300000000;
const past = (): number => present() - 86400 * 32;
const V1 = "dmFsdWU=|1300000000|31c934969f53e48164c50768b40cbd7e2daaaa4f";
const SIG = "3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152";
const V2 = `2|1:0|10:1300000000|3:key|8:dmFsdWU=|${SIG}`;
const E9 = Buffer.from([0xe9]);

const decodeText = (value: string | null, name = "key", opts = {}): string | null =>
  decodeSignedValue(SECRET, name, value, { clock: present, ...opts })?.toString("latin1") ?? null;

t.test("the published known values are produced and read back byte for byte", async (t) => {
  t.equal(createSignedValue(SECRET, "key", "value", { version: 1, clock: present }), V1);
  t.equal(createSignedValue(SECRET, "key", "value", { version: 2, clock: present }), V2);
  t.equal(createSignedValue(SECRET, "key", "value", { clock: present }), V2, "version 2 is the default");
  t.equal(decodeText(V1, "key", { minVersion: 1 }), "value");
  t.equal(decodeText(V2, "key", { minVersion: 2 }), "value");
});

t.test("vectors made by Tornado 6.2 for key versions, bytes and non-ASCII text and names", async (t) => {
  // Produced with Debian's python3-tornado 6.2 create_signed_value at clock 1300000000.
  t.equal(createSignedValue(SECRET_DICT, "key", E9, { clock: present, keyVersion: 1 }),
    "2|1:1|10:1300000000|3:key|4:6Q==|75fed969da3a9a9d3f1a48f2e97dbc8a875c97fec091ae0b07c176494da223fc");
  t.equal(createSignedValue(SECRET_DICT, "key", E9, { clock: present, keyVersion: 0 }),
    "2|1:0|10:1300000000|3:key|4:6Q==|c81b42904a0a85cec931b92e203e2968858d2ac0f6a09d9fde365ed751cb77bc");
  t.equal(createSignedValue(SECRET, "key", E9, { clock: present }),
    "2|1:0|10:1300000000|3:key|4:6Q==|5c017ea04a1b8435854c208b0e45aab24455874a6ab487a0ba6bf88e27abf207");
  t.equal(createSignedValue(SECRET, "key", "é€", { clock: present }),
    "2|1:0|10:1300000000|3:key|8:w6nigqw=|971a359a3d8d3b2fa6f57a4a22db5c34a0b6ff37656956f865f0f41460122c62");
  t.equal(createSignedValue(SECRET, "key", E9, { version: 1, clock: present }),
    "6Q==|1300000000|b2dd686be41c0586e2b3921f9498a30ef30be2d2");
  // Tornado prefixes the name with its length in code points, not bytes: same bytes here.
  t.equal(createSignedValue(SECRET, "clé", "v", { clock: present }),
    "2|1:0|10:1300000000|3:clé|4:dg==|93a2bc53ccca25f7c666effa8920e615c0adb47ad5b1edc43cee1bff6b7ade89");
});

t.test("arbitrary bytes and UTF-8 text round trip", async (t) => {
  for (const version of [1, 2] as const) {
    const signed = createSignedValue(SECRET, "key", E9, { version, clock: present });
    t.same(decodeSignedValue(SECRET, "key", signed, { clock: present }), E9, `v${version} bytes`);
    const text = createSignedValue(SECRET, "key", "héllo → 世界", { version, clock: present });
    t.equal(decodeSignedValue(SECRET, "key", text, { clock: present })?.toString("utf8"), "héllo → 世界", `v${version} text`);
  }
  const empty = createSignedValue(SECRET, "key", "", { clock: present });
  t.equal(decodeSignedValue(SECRET, "key", empty, { clock: present })?.length, 0, "an empty value is a valid empty payload");
});

t.test("a value signed for one name is rejected under another", async (t) => {
  for (const version of [1, 2] as const) {
    const signed1 = createSignedValue(SECRET, "key1", "value", { version, clock: present });
    const signed2 = createSignedValue(SECRET, "key2", "value", { version, clock: present });
    t.equal(decodeText(signed1, "key2"), null, `v${version} key1 as key2`);
    t.equal(decodeText(signed2, "key1"), null, `v${version} key2 as key1`);
    t.equal(decodeText(signed1, "key1"), "value", `v${version} under its own name`);
  }
});

t.test("a value older than maxAgeDays is rejected, at the limit it is accepted", async (t) => {
  for (const version of [1, 2] as const) {
    const signed = createSignedValue(SECRET, "key1", "value", { version, clock: past });
    t.equal(decodeText(signed, "key1", { clock: past }), "value");
    t.equal(decodeText(signed, "key1", { clock: present }), null, `v${version}: 32 days old with the 31-day default`);
    t.equal(decodeText(signed, "key1", { clock: present, maxAgeDays: 32 }), "value", `v${version}: exactly maxAgeDays old`);
    t.equal(decodeText(signed, "key1", { clock: () => present() + 1, maxAgeDays: 32 }), null, `v${version}: one second past`);
  }
});

t.test("tampering with the payload fields of the known value is rejected", async (t) => {
  t.equal(decodeText(`2|1:0|10:1300000000|3:key|8:dmFsdWU=|${SIG}`), "value");
  t.equal(decodeText(`2|1:1|10:1300000000|3:key|8:dmFsdWU=|${SIG}`), null, "key version changed");
  t.equal(decodeText(`2|1:0|10:130000000|3:key|8:dmFsdWU=|${SIG}`), null, "field shorter than its length");
  t.equal(decodeText(`2|1:0|10:1300000000|3:keey|8:dmFsdWU=|${SIG}`), null, "field longer than its length");
});

t.test("tampering with the signature of the known value is rejected", async (t) => {
  const prefix = "2|1:0|10:1300000000|3:key|8:dmFsdWU=|";
  t.equal(decodeText(prefix + SIG), "value");
  for (const sig of ["0".repeat(32), `4${SIG.slice(1)}`, `${SIG.slice(0, -1)}3`, SIG.slice(0, -1), `${SIG}8`, SIG.toUpperCase(), ""]) {
    t.equal(decodeText(prefix + sig), null, `signature ${JSON.stringify(sig)}`);
  }
});

t.test("flipping any bit pattern at any byte position of a v1 or v2 value is rejected", async (t) => {
  let tried = 0;
  for (const original of [V1, V2]) {
    for (let i = 0; i < original.length; i++) {
      for (const flip of [0x01, 0x20, 0x40]) {
        const tampered = original.slice(0, i) + String.fromCharCode(original.charCodeAt(i) ^ flip) + original.slice(i + 1);
        if (decodeText(tampered) !== null) t.fail(`accepted ${JSON.stringify(tampered)}`);
        tried++;
      }
    }
  }
  t.equal(tried, (V1.length + V2.length) * 3, "every position was tried");
  t.equal(decodeText(V1), "value", "the untouched v1 value still decodes");
  t.equal(decodeText(V2), "value", "the untouched v2 value still decodes");
});

t.test("v1: digits moved from payload to timestamp (a far-future timestamp) are rejected", async (t) => {
  // base64 of these bytes is "12345678"; v1 signs payload and timestamp with no delimiter.
  const signed = createSignedValue("0123456789", "foo", Buffer.from("d76df8e7aefc", "hex"), { version: 1 });
  const m = /^12345678\|(\d+)\|([0-9a-f]+)$/.exec(signed);
  t.ok(m, "payload is 12345678");
  const tampered = `1234|5678${m?.[1] ?? ""}|${m?.[2] ?? ""}`;
  t.equal(decodeSignedValue("0123456789", "foo", signed)?.toString("hex"), "d76df8e7aefc");
  t.equal(decodeSignedValue("0123456789", "foo", tampered), null);
});

t.test("v1: a validly signed timestamp starting with 0 is rejected", async (t) => {
  const sign = (stamp: string): string => {
    const sig = createHmac("sha1", SECRET).update("key").update("dmFsdWU=").update(stamp).digest("hex");
    return `dmFsdWU=|${stamp}|${sig}`;
  };
  t.equal(decodeText(sign("1300000000")), "value", "the same construction without a leading 0 is accepted");
  t.equal(decodeText(sign("01300000000")), null);
});

t.test("v1 rejects a timestamp over 31 days ahead; v2 accepts it, as Tornado does", async (t) => {
  const future = (): number => present() + 86400 * 40;
  t.equal(decodeText(createSignedValue(SECRET, "key", "value", { version: 1, clock: future })), null);
  t.equal(decodeText(createSignedValue(SECRET, "key", "value", { version: 2, clock: future })), "value");
  const soon = (): number => present() + 86400 * 30;
  t.equal(decodeText(createSignedValue(SECRET, "key", "value", { version: 1, clock: soon })), "value", "v1 under 31 days ahead");
});

t.test("key rotation: each key version decodes with its own key, an unknown version is rejected", async (t) => {
  for (const keyVersion of [0, 1, 2]) {
    const signed = createSignedValue(SECRET_DICT, "key", E9, { clock: present, keyVersion });
    t.same(decodeSignedValue(SECRET_DICT, "key", signed, { clock: present }), E9, `key version ${keyVersion}`);
    t.equal(getSignatureKeyVersion(signed), keyVersion);
  }
  const signed0 = createSignedValue(SECRET_DICT, "key", E9, { clock: present, keyVersion: 0 });
  const { 0: _removed, ...withoutZero } = SECRET_DICT;
  t.equal(decodeSignedValue(withoutZero, "key", signed0, { clock: present }), null, "key 0 retired");
  t.equal(decodeSignedValue({ 0: "another key" }, "key", signed0, { clock: present }), null, "key 0 replaced");
  t.equal(decodeSignedValue(SECRET_DICT, "key", V1, { clock: present }), null, "a v1 value cannot use a key map");
  t.equal(decodeSignedValue(SECRET_DICT, "key", signed0.replace("2|1:0|", "2|1:7|"), { clock: present }), null, "version with no key");
  t.equal(decodeSignedValue(SECRET_DICT, "key", signed0.replace("2|1:0|", "2|8:toString|"), { clock: present }), null);
  // A string secret ignores the written key version, as in Tornado.
  const stamped = createSignedValue(SECRET, "key", "value", { clock: present, keyVersion: 3 });
  t.match(stamped, /^2\|1:3\|/);
  t.equal(decodeText(stamped), "value");
});

t.test("minVersion 2 refuses v1 values; unsupported options throw", async (t) => {
  t.equal(decodeText(V1, "key", { minVersion: 2 }), null);
  t.equal(decodeText(V2, "key", { minVersion: 2 }), "value");
  t.throws(() => decodeSignedValue(SECRET, "key", V2, { minVersion: 3 as 2 }), { code: "E_SIGNED_VALUE" });
  t.throws(() => createSignedValue(SECRET, "key", "v", { version: 3 as 2 }), { code: "E_SIGNED_VALUE" });
  t.throws(() => createSignedValue(SECRET, "key", "v", { clock: () => Number.NaN }), { code: "E_SIGNED_VALUE" });
});

t.test("a key-version map needs a known keyVersion to sign, and cannot sign v1", async (t) => {
  t.throws(() => createSignedValue(SECRET_DICT, "key", "v"), { code: "E_COOKIE_SECRET" });
  t.throws(() => createSignedValue(SECRET_DICT, "key", "v", { keyVersion: 9 }), { code: "E_COOKIE_SECRET" });
  t.throws(() => createSignedValue(SECRET_DICT, "key", "v", { keyVersion: 1, version: 1 }), { code: "E_COOKIE_SECRET" });
  t.throws(() => createSignedValue(SECRET, "key", "v", { keyVersion: 1.5 }), { code: "E_COOKIE_SECRET" });
});

t.test("missing, malformed and unknown-version values decode to null without throwing", async (t) => {
  const bad = [null, undefined, "", "|", "||", "2|", "2|1:0", "2|x:0|10:1300000000|3:key|8:dmFsdWU=|" + SIG,
    "3|1:0|10:1300000000|3:key|8:dmFsdWU=|" + SIG, "2|1:0|10:1300000000|3:key|8:dmFsdWU=", "\u0000\uffff|é|\n",
    `2|1:0|10:1300000000|3:key|8:dmFsdWU=|${SIG}\n`, "2|-1:0|10:1300000000|3:key|8:dmFsdWU=|" + SIG];
  for (const value of bad) t.equal(decodeText(value ?? null), null, JSON.stringify(value));
  // Version numbers over 999 are v1 base64 that happens to start with digits.
  t.equal(decodeText(`1234|1300000000|${"0".repeat(40)}`), null);
  t.equal(getSignatureKeyVersion(V1), null, "v1 has no key version");
  t.equal(getSignatureKeyVersion("2|x:0|"), null);
  t.equal(getSignatureKeyVersion("garbage"), null);
});

t.test("a value whose signed payload is not canonical base64 is rejected", async (t) => {
  const toSign = "2|1:0|10:1300000000|3:key|3:a*b|";
  const forged = toSign + createHmac("sha256", SECRET).update(toSign).digest("hex");
  t.equal(decodeText(forged), null);
});

t.test("XSRF v2 token round trip: the raw token survives masking", async (t) => {
  const { token, raw, timestamp } = createXsrfToken(undefined, 1300000000.7);
  t.equal(raw.length, 16, "16 random bytes by default");
  t.equal(timestamp, 1300000000, "timestamp truncated to whole seconds");
  t.match(token, /^2\|[0-9a-f]{8}\|[0-9a-f]{32}\|1300000000$/);
  const decoded = decodeXsrfToken(token);
  t.equal(decoded?.version, 2);
  t.same(decoded?.raw, raw);
  t.equal(decoded?.timestamp, 1300000000);
  t.ok(xsrfTokensMatch(decoded?.raw ?? Buffer.alloc(0), raw));
  const fresh = createXsrfToken();
  t.not(fresh.raw.equals(raw), true, "a new raw token each time none is given");
  t.ok(Math.abs(fresh.timestamp - Date.now() / 1000) < 5, "the default timestamp is now, in seconds");
});

t.test("XSRF masking differs on every call while the raw token stays equal", async (t) => {
  const raw = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
  const tokens = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const { token } = createXsrfToken(raw, 1300000000);
    tokens.add(token);
    t.ok(xsrfTokensMatch(decodeXsrfToken(token)?.raw ?? Buffer.alloc(0), raw));
  }
  t.equal(tokens.size, 20, "20 distinct tokens");
  t.throws(() => createXsrfToken(Buffer.alloc(0)), { code: "E_SIGNED_VALUE" });
  t.throws(() => createXsrfToken(raw, Number.POSITIVE_INFINITY), { code: "E_SIGNED_VALUE" });
});

t.test("a v2 token made by Tornado (mask 01020304 over raw 00..0f) decodes", async (t) => {
  const decoded = decodeXsrfToken("2|01020304|0103010705070503090b090f0d0f0d0b|1300000000");
  t.equal(decoded?.raw.toString("hex"), "000102030405060708090a0b0c0d0e0f");
  t.equal(decoded?.timestamp, 1300000000);
});

t.test("v1 XSRF tokens: plain hex, or any other text as its UTF-8 bytes", async (t) => {
  const hex = decodeXsrfToken("deadbeef");
  t.equal(hex?.version, 1);
  t.equal(hex?.raw.toString("hex"), "deadbeef");
  t.ok(Math.abs((hex?.timestamp ?? 0) - Date.now() / 1000) < 5, "a v1 token carries no time: now");
  t.equal(decodeXsrfToken("xoxo")?.raw.toString("utf8"), "xoxo");
  t.equal(decodeXsrfToken("abc")?.raw.toString("utf8"), "abc", "odd-length hex is text");
  t.equal(decodeXsrfToken("é")?.raw.toString("hex"), "c3a9");
  // A v1 cookie and a v2 token carrying the same raw bytes match each other.
  const v2 = createXsrfToken(Buffer.from("deadbeef", "hex"));
  t.ok(xsrfTokensMatch(decodeXsrfToken(v2.token)?.raw ?? Buffer.alloc(0), hex?.raw ?? Buffer.alloc(1)));
});

t.test("invalid XSRF tokens decode to null", async (t) => {
  for (const token of [undefined, "", "3|", "1|deadbeef", "2|", "2|01020304|0100|", "2|01020304|01000|1", "2|zz020304|0100|1",
    "2|010203|0100|1", "2|0102030405|0100|1", "2|01020304||1", "2|01020304|0100|1|5", "2|01020304|0100|x", "2|01020304|0100|1.5"]) {
    t.equal(decodeXsrfToken(token), null, JSON.stringify(token));
  }
  t.equal(decodeXsrfToken("2|01020304|0100| +1_300 ")?.timestamp, 1300, "the timestamp is read with Python's int()");
});

t.test("xsrfTokensMatch compares lengths safely and never matches empty tokens", async (t) => {
  const a = Buffer.from("abcdef");
  t.equal(xsrfTokensMatch(a, Buffer.from("abcdef")), true);
  t.equal(xsrfTokensMatch(a, Buffer.from("abcdeg")), false);
  t.equal(xsrfTokensMatch(a, Buffer.from("abcde")), false);
  t.equal(xsrfTokensMatch(a, Buffer.from("abcdefg")), false);
  t.equal(xsrfTokensMatch(Buffer.alloc(0), Buffer.alloc(0)), false);
});

// ---- Live interop with Tornado (Debian python3-tornado under /usr/bin/python3) ----

const PYTHON = "/usr/bin/python3";
const tornadoAvailable = spawnSync(PYTHON, ["-c", "import tornado.web"], { timeout: 10_000 }).status === 0;

const INTEROP = String.raw`
import base64, json, sys
from unittest import mock
from tornado.web import Application, RequestHandler, HTTPError, create_signed_value, decode_signed_value, get_signature_key_version
from tornado.httputil import HTTPServerRequest, HTTPHeaders
inp = json.load(sys.stdin)
def secret(s): return s if isinstance(s, str) else {int(k): v for k, v in s.items()}
def handler(cookie=None, header=None):
    h = HTTPHeaders()
    if cookie is not None: h["Cookie"] = "_xsrf=" + cookie
    if header is not None: h["X-Xsrftoken"] = header
    req = HTTPServerRequest(method="POST", uri="/", headers=h, connection=mock.Mock())
    return RequestHandler(Application(xsrf_cookies=True), req)
def check(cookie, token):
    try:
        handler(cookie, token).check_xsrf_cookie()
        return True
    except HTTPError:
        return False
out = {"decoded": [], "keyVersions": [], "created": [], "xsrfChecks": [], "tornadoTokens": []}
for c in inp["decode"]:
    d = decode_signed_value(secret(c["secret"]), c["name"], c["value"], clock=lambda: c["now"])
    out["decoded"].append(None if d is None else base64.b64encode(d).decode())
    out["keyVersions"].append(get_signature_key_version(c["value"]))
for c in inp["create"]:
    v = create_signed_value(secret(c["secret"]), c["name"], base64.b64decode(c["payload"]), version=c["version"], clock=lambda: c["now"], key_version=c.get("keyVersion"))
    out["created"].append(v.decode("utf-8"))
for cookie, token in inp["xsrfChecks"]:
    out["xsrfChecks"].append(check(cookie, token))
for cookie in inp["tornadoTokens"]:
    out["tornadoTokens"].append(handler(cookie).xsrf_token.decode())
json.dump(out, sys.stdout)
`;

function runTornado(input: unknown): Record<string, unknown[]> {
  const run = spawnSync(PYTHON, ["-c", INTEROP], { input: JSON.stringify(input), timeout: 20_000, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`python exited ${String(run.status)}: ${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, unknown[]>;
}

t.test("Tornado itself reads our signed values and XSRF tokens, and we read its",
  tornadoAvailable ? {} : { skip: "python3-tornado is not installed (/usr/bin/python3 -c 'import tornado' failed)" },
  async (t) => {
    const now = Math.floor(Date.now() / 1000);
    const payloads = [Buffer.from("value"), E9, Buffer.from("héllo → 世界"), Buffer.alloc(0), Buffer.from([0, 255, 124, 58])];
    const cases = [
      ...payloads.flatMap((p) => [1, 2].map((version) => ({ secret: SECRET, name: "key", payload: p, version: version as 1 | 2 }))),
      ...[0, 1, 2].map((keyVersion) => ({ secret: SECRET_DICT, name: "session", payload: E9, version: 2 as const, keyVersion })),
    ];
    const ours = cases.map((c) => createSignedValue(c.secret, c.name, c.payload, { version: c.version, clock: () => now,
      ...("keyVersion" in c ? { keyVersion: c.keyVersion } : {}) }));
    const tampered = ours.map((v) => v.slice(0, -1) + (v.endsWith("0") ? "1" : "0"));
    const raw = Buffer.from("00112233445566778899aabbccddeeff", "hex");
    const ourCookie = createXsrfToken(raw).token;
    const result = runTornado({
      decode: [
        ...cases.map((c, i) => ({ secret: c.secret, name: c.name, value: ours[i], now })),
        ...cases.map((c, i) => ({ secret: c.secret, name: c.name, value: tampered[i], now })),
        ...cases.map((c, i) => ({ secret: c.secret, name: "other", value: ours[i], now })),
      ],
      create: cases.map((c) => ({ ...c, payload: c.payload.toString("base64"), now })),
      xsrfChecks: [
        [ourCookie, createXsrfToken(raw).token], // our cookie, our freshly masked form token
        [ourCookie, raw.toString("hex")], // our v2 cookie, a v1 form token
        [ourCookie, createXsrfToken(Buffer.from("another token!!!")).token], // a different token
      ],
      tornadoTokens: [ourCookie, "deadbeef"],
    });
    const n = cases.length;
    t.same(result["decoded"]?.slice(0, n), cases.map((c) => c.payload.toString("base64")), "Tornado decodes every value we signed");
    t.same(result["decoded"]?.slice(n), new Array(2 * n).fill(null), "Tornado rejects them tampered or under another name");
    t.same(result["keyVersions"]?.slice(0, n), cases.map((c) => (c.version === 1 ? null : ("keyVersion" in c ? c.keyVersion : 0))));
    t.same(result["created"], ours, "Tornado signs the same bytes we do");
    t.same(result["xsrfChecks"], [true, true, false], "Tornado's check_xsrf_cookie accepts our tokens and refuses a wrong one");
    const [fromOurCookie, fromV1Cookie] = (result["tornadoTokens"] ?? []) as string[];
    t.match(fromOurCookie, /^2\|[0-9a-f]{8}\|[0-9a-f]{32}\|\d+$/);
    t.same(decodeXsrfToken(fromOurCookie)?.raw, raw, "Tornado re-masks the raw token from our cookie and we unmask it");
    t.not(fromOurCookie, ourCookie, "with its own mask");
    t.equal(decodeXsrfToken(fromV1Cookie)?.raw.toString("hex"), "deadbeef", "Tornado upgrades a v1 cookie to v2 and we read it");
  });
