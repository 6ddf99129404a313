// The default ETag (core/http/etag.ts): a change anywhere in a body changes it, for strings and
// buffers of many lengths; mid-sized bodies take 64 bits of SHA-1, bodies past 4 KiB all of it.
import t from "tap";
import { createHash } from "node:crypto";
import { etagOf, etagMatches } from "../../core/http/etag.ts";

t.test("a one-character change anywhere changes the ETag; the same body keeps it", async (t) => {
  let checked = 0;
  for (const length of [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 422, 4096]) {
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

t.test("bodies past 256 characters take the first 64 bits of their SHA-1 (one call is cheaper than the JS loop there)", async (t) => {
  const mid = "y".repeat(1000);
  const sha = createHash("sha1").update(mid).digest("hex");
  t.equal(etagOf(mid), `"1000-${sha.slice(0, 16)}"`);
  t.equal(etagOf(Buffer.from(mid)), etagOf(mid), "bytes and text alike");
  t.not(etagOf("y".repeat(256)), `"256-${createHash("sha1").update("y".repeat(256)).digest("hex").slice(0, 16)}"`, "256 and under: the JS hash");
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
