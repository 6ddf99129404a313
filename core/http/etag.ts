/**
 * Entity tags: the default `ETag` of a buffered body and `If-None-Match` matching (RFC 9110
 * §13.1.2, weak comparison, `*`, lists).
 */
import { createHash } from "node:crypto";
import * as crypto from "node:crypto";
import type { Body } from "./headers.ts";

type OneShotHash = (algorithm: string, data: string | Buffer, encoding: "hex") => string;
// crypto.hash (Node ≥ 20.12) hashes a body in one call, without a Hash object.
const oneShot = (crypto as unknown as { hash?: OneShotHash }).hash;

/** Past this size the ETag is the body's whole SHA-1, as Tornado's. */
const SMALL_BODY = 4096;
/**
 * Up to this many characters a string is hashed a character at a time; past it, its UTF-8 bytes
 * are hashed four at a time (measured: the character loop is cheaper for a short body such as a
 * hello world, the word loop from about 30 characters on, and at 422 characters it takes half
 * the time of one SHA-1 call).
 */
const CHARACTER_HASH_MAX = 32;

/**
 * The default ETag: a quoted hash of the body and its length. An ETag only has to change when
 * the body does, so bodies up to 4 KiB (the common case) take a 64-bit non-cryptographic hash
 * computed in JS, in the form `"<length>-<16 hex digits>"` (the length in characters for a short
 * string, else in bytes): a SHA-1 call was the largest single cost of a hello-world request, and
 * of a 400-byte JSON document (in-server, paired: 1.06x requests per CPU-second on such a
 * document served through its schema). Bodies past 4 KiB take the whole SHA-1, as Tornado does.
 */
export function etagOf(body: Body): string {
  const length = body.length;
  if (length > SMALL_BODY) {
    const hex = oneShot !== undefined ? oneShot("sha1", body, "hex") : createHash("sha1").update(body).digest("hex");
    return `"${hex}"`;
  }
  return typeof body === "string" && length <= CHARACTER_HASH_MAX ? characterTag(body) : wordTag(body);
}

// Two 32-bit lanes with different odd multipliers, each fed every character.
function characterTag(body: string): string {
  const length = body.length;
  let a = 0x9e3779b9 ^ length;
  let b = 0x85ebca6b ^ length;
  for (let i = 0; i < length; i++) {
    const c = body.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return formatTag(length, a, b);
}

// The body's bytes (text as UTF-8) copied to a scratch buffer and read as 32-bit words: each word
// is scrambled as in MurmurHash3, then fed to two lanes (a MurmurHash3 lane and a rotating
// multiplicative one), so every word reaches all 64 bits of state.
function wordTag(body: Body): string {
  const bytes = typeof body === "string" ? BODY_BYTES.write(body, 0, "utf8") : body.copy(BODY_BYTES, 0);
  BODY_BYTES[bytes] = 0; // the last word's unused bytes
  BODY_BYTES[bytes + 1] = 0;
  BODY_BYTES[bytes + 2] = 0;
  const count = (bytes + 3) >>> 2;
  let a = 0x9e3779b9 ^ bytes;
  let b = 0x85ebca6b ^ bytes;
  for (let i = 0; i < count; i++) {
    let k = Math.imul(BODY_WORDS[i]!, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    a ^= k;
    a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
    b = Math.imul(b ^ k, 0x01000193);
    b = (b << 11) | (b >>> 21);
  }
  return formatTag(bytes, a, b);
}

/** Room for the UTF-8 bytes of the longest string hashed in JS (3 per UTF-16 unit), and a word's padding. */
const BODY_BYTES = Buffer.allocUnsafeSlow(3 * SMALL_BODY + 4);
const BODY_WORDS = new Int32Array(BODY_BYTES.buffer, BODY_BYTES.byteOffset, BODY_BYTES.length >>> 2);

// A murmur-style finaliser mixes the two lanes into 64 bits, written as `"<length>-<16 hex digits>"`.
// The digits are made into one flat string by a single String.fromCharCode call: timed inside a
// loaded server, half a microsecond against two for writing them into a Buffer and decoding it.
function formatTag(length: number, a: number, b: number): string {
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b) ^ Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b = Math.imul(b ^ (b >>> 16), 0x85ebca6b) ^ Math.imul(a ^ (a >>> 13), 0xc2b2ae35);
  const h = HEX_DIGITS;
  const digits = String.fromCharCode(
    h[a >>> 28]!, h[(a >>> 24) & 15]!, h[(a >>> 20) & 15]!, h[(a >>> 16) & 15]!, h[(a >>> 12) & 15]!, h[(a >>> 8) & 15]!, h[(a >>> 4) & 15]!, h[a & 15]!,
    h[b >>> 28]!, h[(b >>> 24) & 15]!, h[(b >>> 20) & 15]!, h[(b >>> 16) & 15]!, h[(b >>> 12) & 15]!, h[(b >>> 8) & 15]!, h[(b >>> 4) & 15]!, h[b & 15]!,
  );
  return `"${length}-${digits}"`;
}

/** The character codes of `0`–`9`, `a`–`f`. */
const HEX_DIGITS = Uint8Array.from("0123456789abcdef", (c) => c.charCodeAt(0));

/** Whether `If-None-Match` matches `etag` (weak comparison, `*`, comma lists). RFC 9110 §13.1.2. */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  const target = etag.startsWith("W/") ? etag.slice(2) : etag;
  for (const raw of ifNoneMatch.split(",")) {
    const candidate = raw.trim();
    if (candidate === "*") return true;
    if ((candidate.startsWith("W/") ? candidate.slice(2) : candidate) === target) return true;
  }
  return false;
}
