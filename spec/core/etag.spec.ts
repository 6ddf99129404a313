// The default ETag (core/http/etag.ts): a change anywhere in a body changes it, for strings and
// buffers of many lengths; bodies up to 4 KiB take a 64-bit hash computed in JS, past 4 KiB SHA-1.
import t from "tap";
import { createHash } from "node:crypto";
import { etagOf, etagMatches } from "../../core/http/etag.ts";

t.test("a one-character change anywhere changes the ETag; the same body keeps it", async (t) => {
  let checked = 0;
  for (const length of [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 34, 35, 36, 63, 64, 65, 422, 1001, 4096]) {
    const text = Array.from({ length }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
    const bytes = Buffer.from(text);
    const tag = etagOf(text);
    const byteTag = etagOf(bytes);
    t.equal(etagOf(text.slice()), tag, `stable (${length})`);
    t.match(tag, /^"\d+-[0-9a-f]{16}"$/);
    for (let at = 0; at < length; at += length > 64 ? 37 : 1) {
      const changed = text.slice(0, at) + (text[at] === "z" ? "y" : "z") + text.slice(at + 1);
      const changedBytes = Buffer.from(bytes);
      changedBytes[at] = changedBytes[at]! ^ 1;
      if (etagOf(changed) === tag || etagOf(changedBytes) === byteTag) t.fail(`unchanged at ${at} of ${length}`);
      checked++;
    }
  }
  t.ok(checked > 300, `${checked} changed bodies, every ETag changed`);
  t.not(etagOf("ab"), etagOf("ba"), "order matters");
  t.not(etagOf("é"), etagOf("e"), "non-ASCII text");
});

t.test("past 32 characters a body's UTF-8 bytes are hashed: text and its bytes share a tag", async (t) => {
  for (const text of ["y".repeat(33), "y".repeat(1000), `{"name":"caf\u00e9","tags":["\u00fcber"],"n":${"9".repeat(300)}}`, "\u{1F600}".repeat(1000)]) {
    t.equal(etagOf(Buffer.from(text)), etagOf(text), `${text.length} characters, ${Buffer.byteLength(text)} bytes`);
    t.match(etagOf(text), new RegExp(`^"${Buffer.byteLength(text)}-[0-9a-f]{16}"$`));
  }
  const accents = ["\u00e9", "\u00ea", "\u00e8", "\u00c9", "\u0169", "\u0429", "\u4e2d", "\uff21"];
  const tags = new Set(accents.flatMap((a) => accents.map((b) => etagOf(`${"x".repeat(40)}${a}${"x".repeat(6)}${b}`))));
  t.equal(tags.size, accents.length ** 2, "every pair of accented characters gives its own tag");
  // Bytes that differ only in the top bit of two words: a plain multiply-per-word hash keeps that
  // difference in its top bit, where the second one cancels it (both lanes alike).
  const bytes = Buffer.alloc(40, 0x78);
  const flipped = Buffer.from(bytes);
  flipped[3]! ^= 0x80;
  flipped[7]! ^= 0x80;
  t.not(etagOf(flipped), etagOf(bytes), "two top bits flipped in two words change the tag");
  // The scratch buffer keeps a longer body's bytes: they must not reach a shorter one's tag.
  const short = "z".repeat(33);
  const before = etagOf(short);
  etagOf("w".repeat(4000));
  t.equal(etagOf(short), before, "a longer body hashed before does not change a shorter one's tag");
  t.not(etagOf("z".repeat(33)), etagOf(`${"z".repeat(33)}\u0000`), "a trailing NUL is part of the body");
});

t.test("bodies past 4 KiB take SHA-1, as Tornado does", async (t) => {
  const big = "x".repeat(5000);
  t.equal(etagOf(big), `"${createHash("sha1").update(big).digest("hex")}"`);
});

t.test("If-None-Match: weak comparison, lists and *", async (t) => {
  const tag = etagOf("hello");
  t.ok(etagMatches(tag, tag));
  t.ok(etagMatches(`W/${tag}`, tag));
  t.ok(etagMatches(`"a", ${tag}`, tag));
  t.ok(etagMatches("*", tag));
  t.notOk(etagMatches('"other"', tag));
  t.notOk(etagMatches(undefined, tag));
});
