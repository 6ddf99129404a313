/**
 * Tornado-compatible signed values and XSRF tokens.
 *
 * Values are byte-for-byte those of Tornado's `create_signed_value` / `decode_signed_value`
 * (tornado/web.py), so a Tornado app and a typhoon app sharing a secret read each other's
 * signed cookies, and an `_xsrf` cookie set by one is accepted by the other. Signed-value
 * clocks and XSRF timestamps are in seconds, as in Tornado, because they are written into the
 * value itself.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { ErrorCode, TyphoonError } from "../errors.ts";

/** A signing secret: one string, or several keyed by key version (for key rotation). */
export type SecretSpec = string | { [version: number]: string };

/** Options of {@link createSignedValue}. */
export interface CreateSignedValueOptions {
  /** Format version: 2 (default, HMAC-SHA256) or 1 (legacy, HMAC-SHA1). */
  version?: 1 | 2;
  /** Current time in seconds since the epoch (default `Date.now() / 1000`). */
  clock?: () => number;
  /** The key version written into the value; required when `secret` is a key-version map. */
  keyVersion?: number;
}

/** Options of {@link decodeSignedValue}. */
export interface DecodeSignedValueOptions {
  /** Values signed longer ago than this are rejected (default 31). */
  maxAgeDays?: number;
  /** Current time in seconds since the epoch (default `Date.now() / 1000`). */
  clock?: () => number;
  /** Oldest format version accepted (default 1, Tornado's `DEFAULT_SIGNED_VALUE_MIN_VERSION`). */
  minVersion?: 1 | 2;
}

/** A decoded `_xsrf` token: its format version, the raw secret bytes, and when it was made. */
export interface XsrfToken {
  version: number | null;
  raw: Buffer;
  /** Seconds since the epoch (for a version 1 token, which carries none, the current time). */
  timestamp: number;
}

const DAY_SECONDS = 86400;

/**
 * Signs and timestamps `value` under `name`, so that it cannot be forged.
 *
 * @example
 * createSignedValue("It's a secret to everybody", "key", "value", { clock: () => 1300000000 });
 * // "2|1:0|10:1300000000|3:key|8:dmFsdWU=|3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152"
 * createSignedValue({ 0: "old key", 1: "new key" }, "session", userId, { keyVersion: 1 });
 */
export function createSignedValue(secret: SecretSpec, name: string, value: string | Buffer,
  options: CreateSignedValueOptions = {}): string {
  const version = options.version ?? 2;
  const seconds = (options.clock ?? defaultClock)();
  if (!Number.isFinite(seconds)) throw new TyphoonError(ErrorCode.SIGNED_VALUE, "clock() must return a finite number of seconds");
  const timestamp = String(Math.trunc(seconds));
  const encoded = (typeof value === "string" ? Buffer.from(value, "utf8") : value).toString("base64");
  if (version === 1) {
    if (typeof secret !== "string") throw new TyphoonError(ErrorCode.COOKIE_SECRET, "signed value version 1 does not support key versions");
    const signature = hmacHex("sha1", secret, Buffer.from(name, "utf8"), Buffer.from(encoded), Buffer.from(timestamp));
    return `${encoded}|${timestamp}|${signature}`;
  }
  if (version !== 2) throw new TyphoonError(ErrorCode.SIGNED_VALUE, `unsupported signed value version ${String(version)}`);
  const keyVersion = options.keyVersion;
  if (keyVersion !== undefined && !Number.isSafeInteger(keyVersion)) {
    throw new TyphoonError(ErrorCode.COOKIE_SECRET, `key version must be an integer, got ${String(keyVersion)}`);
  }
  let key: string;
  if (typeof secret === "string") {
    key = secret;
  } else {
    if (keyVersion === undefined) throw new TyphoonError(ErrorCode.COOKIE_SECRET, "keyVersion is required when the secret is a key-version map");
    const found = secretFor(secret, keyVersion);
    if (found === null) throw new TyphoonError(ErrorCode.COOKIE_SECRET, `no secret for key version ${keyVersion}`);
    key = found;
  }
  // Tornado's "%d:%s" fields. The length of the name is Python's len() of a str, i.e. code
  // points, not UTF-8 bytes: kept so a non-ASCII name gives Tornado's exact bytes.
  const field = (s: string): string => `${[...s].length}:${s}`;
  const toSign = `2|${field(String(keyVersion ?? 0))}|${field(timestamp)}|${field(name)}|${field(encoded)}|`;
  return toSign + hmacHex("sha256", key, Buffer.from(toSign, "utf8"));
}

/**
 * Checks a value made by {@link createSignedValue} (or by Tornado) and returns the signed bytes,
 * or `null` when it is missing, malformed, tampered with, signed for another name, signed with
 * an unknown key version, too old, or older than `minVersion`. Never throws for a bad value.
 */
export function decodeSignedValue(secret: SecretSpec, name: string, value: string | null | undefined,
  options: DecodeSignedValueOptions = {}): Buffer | null {
  const clock = options.clock ?? defaultClock;
  const maxAgeDays = options.maxAgeDays ?? 31;
  const minVersion = options.minVersion ?? 1;
  if (minVersion !== 1 && minVersion !== 2) {
    throw new TyphoonError(ErrorCode.SIGNED_VALUE, `unsupported minVersion ${String(minVersion)}`);
  }
  if (!value) return null;
  // Parse the UTF-8 bytes as latin1 so string offsets are byte offsets, as in Tornado.
  const bytes = Buffer.from(value, "utf8").toString("latin1");
  const version = signedValueVersion(bytes);
  if (version < minVersion) return null;
  if (version === 1) {
    // Tornado asserts here (a 500); a forged v1-looking cookie should just be invalid.
    if (typeof secret !== "string") return null;
    return decodeV1(secret, name, bytes, maxAgeDays, clock());
  }
  if (version === 2) return decodeV2(secret, name, bytes, maxAgeDays, clock());
  return null;
}

/** The key version written in a version 2 signed value, or `null` (version 1, malformed). */
export function getSignatureKeyVersion(value: string): number | null {
  const bytes = Buffer.from(value, "utf8").toString("latin1");
  if (signedValueVersion(bytes) < 2) return null;
  return fieldsV2(bytes)?.keyVersion ?? null;
}

/**
 * A new masked `_xsrf` token in Tornado's version 2 format, `2|<mask hex>|<masked hex>|<ts>`.
 * A fresh random 4-byte mask each call, so the token differs every time (BREACH) while the
 * raw token it carries stays the same.
 *
 * @param rawToken the secret token bytes (default: 16 new random bytes)
 * @param timestamp seconds since the epoch (default: now)
 */
export function createXsrfToken(rawToken: Buffer = randomBytes(16), timestamp: number = defaultClock()): { token: string; raw: Buffer; timestamp: number } {
  if (rawToken.length === 0) throw new TyphoonError(ErrorCode.SIGNED_VALUE, "an XSRF token cannot be empty");
  if (!Number.isFinite(timestamp)) throw new TyphoonError(ErrorCode.SIGNED_VALUE, "XSRF timestamp must be a finite number of seconds");
  const mask = randomBytes(4);
  const seconds = Math.trunc(timestamp);
  return { token: `2|${mask.toString("hex")}|${xorMask(mask, rawToken).toString("hex")}|${seconds}`, raw: rawToken, timestamp: seconds };
}

/**
 * Reads an `_xsrf` cookie or submitted token like Tornado's `_decode_xsrf_token`: version 2
 * (masked), or version 1 (plain hex, or any other string taken as its UTF-8 bytes).
 * Returns `null` for a missing, malformed, empty or unknown-version token.
 */
export function decodeXsrfToken(cookieValue: string | undefined): XsrfToken | null {
  if (!cookieValue) return null;
  const m = VERSION_PREFIX.exec(Buffer.from(cookieValue, "utf8").toString("latin1"));
  if (m === null) {
    const hex = hexDecode(cookieValue);
    return { version: 1, raw: hex ?? Buffer.from(cookieValue, "utf8"), timestamp: Math.trunc(defaultClock()) };
  }
  // Tornado treats any other numbered version (even "1|...") as absent.
  if (m[1] !== "2") return null;
  const parts = cookieValue.split("|");
  if (parts.length !== 4) return null;
  const mask = hexDecode(parts[1]);
  const masked = hexDecode(parts[2]);
  const timestamp = pythonInt(parts[3]);
  // Tornado's C mask reads exactly four bytes whatever it is given; anything else is garbage.
  if (mask === null || mask.length !== 4 || masked === null || masked.length === 0 || timestamp === null) return null;
  return { version: 2, raw: xorMask(mask, masked), timestamp };
}

/** Whether two raw XSRF tokens are equal, in constant time. Empty tokens never match. */
export function xsrfTokensMatch(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length || a.length === 0) {
    // Spend the same work as a real comparison; only the (public) lengths leak.
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

/** Python's `^([1-9][0-9]*)\|(.*)$` on bytes: `.` stops at `\n` and `$` allows one final `\n`. */
const VERSION_PREFIX = /^([1-9][0-9]*)\|[^\n]*\n?$/;

function defaultClock(): number {
  return Date.now() / 1000;
}

/** Tornado's `_get_version`: a leading "N|" with N ≤ 999 is a version; anything else is v1. */
function signedValueVersion(bytes: string): number {
  const m = VERSION_PREFIX.exec(bytes);
  if (m === null) return 1;
  const version = Number(m[1]);
  // Version-less v1 payloads (base64) can start with digits and a pipe only when those
  // digits are a multiple of 4 long, so Tornado reads 1..999 as versions.
  return version > 999 ? 1 : version;
}

function decodeV1(secret: string, name: string, bytes: string, maxAgeDays: number, now: number): Buffer | null {
  const parts = bytes.split("|");
  if (parts.length !== 3) return null;
  const [payload, stamp, signature] = parts;
  const expected = hmacHex("sha1", secret, Buffer.from(name, "utf8"), Buffer.from(payload, "latin1"), Buffer.from(stamp, "latin1"));
  if (!constantTimeEqual(signature, expected)) return null;
  const timestamp = pythonInt(stamp);
  if (timestamp === null || timestamp < now - maxAgeDays * DAY_SECONDS) return null;
  // v1 signs payload and timestamp without a delimiter, so trailing payload digits can be moved
  // into the timestamp without breaking the signature: Tornado rejects far-future and
  // zero-led timestamps instead.
  if (timestamp > now + 31 * DAY_SECONDS) return null;
  if (stamp.startsWith("0")) return null;
  return base64Decode(payload);
}

function decodeV2(secret: SecretSpec, name: string, bytes: string, maxAgeDays: number, now: number): Buffer | null {
  const fields = fieldsV2(bytes);
  if (fields === null) return null;
  const key = typeof secret === "string" ? secret : secretFor(secret, fields.keyVersion);
  if (key === null) return null;
  // Tornado's value[:-len(sig)]: an empty signature signs the empty string (and fails).
  const signed = fields.signature.length === 0 ? "" : bytes.slice(0, -fields.signature.length);
  if (!constantTimeEqual(fields.signature, hmacHex("sha256", key, Buffer.from(signed, "latin1")))) return null;
  if (!Buffer.from(fields.name, "latin1").equals(Buffer.from(name, "utf8"))) return null;
  const timestamp = pythonInt(fields.timestamp);
  // No future check here, as in Tornado: the v2 timestamp is inside the signature.
  if (timestamp === null || timestamp < now - maxAgeDays * DAY_SECONDS) return null;
  return base64Decode(fields.value);
}

interface FieldsV2 { keyVersion: number; timestamp: string; name: string; value: string; signature: string }

/** Tornado's `_decode_fields_v2`: four "<len>:<bytes>|" fields after "2|", then the signature. */
function fieldsV2(bytes: string): FieldsV2 | null {
  let rest = bytes.slice(2);
  const fields: string[] = [];
  for (let i = 0; i < 4; i++) {
    const colon = rest.indexOf(":");
    const length = pythonInt(colon < 0 ? rest : rest.slice(0, colon));
    const after = colon < 0 ? "" : rest.slice(colon + 1);
    if (length === null || length < 0 || after[length] !== "|") return null;
    fields.push(after.slice(0, length));
    rest = after.slice(length + 1);
  }
  const [keyVersion, timestamp, name, value] = fields;
  const kv = pythonInt(keyVersion);
  return kv === null ? null : { keyVersion: kv, timestamp, name, value, signature: rest };
}

function secretFor(secret: { [version: number]: string }, keyVersion: number): string | null {
  const key: unknown = Object.hasOwn(secret, keyVersion) ? secret[keyVersion] : undefined;
  return typeof key === "string" ? key : null;
}

function hmacHex(algorithm: "sha1" | "sha256", secret: string, ...parts: Buffer[]): string {
  const hmac = createHmac(algorithm, Buffer.from(secret, "utf8"));
  for (const part of parts) hmac.update(part);
  return hmac.digest("hex");
}

/** `hmac.compare_digest` on two byte strings (latin1 JS strings): constant time, length-safe. */
function constantTimeEqual(given: string, expected: string): boolean {
  return xsrfTokensMatch(Buffer.from(given, "latin1"), Buffer.from(expected, "latin1"));
}

/** Python's `int()` of ASCII text: surrounding whitespace, a sign, `_` between digits. */
function pythonInt(text: string): number | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d(?:_?\d)*)[ \t\n\v\f\r]*$/.exec(text);
  if (m === null) return null;
  const n = Number(m[2].replaceAll("_", ""));
  return m[1] === "-" ? -n : n;
}

/** `binascii.a2b_hex`: an even number of hex digits, either case; `null` otherwise. */
function hexDecode(text: string): Buffer | null {
  return /^(?:[0-9a-fA-F]{2})*$/.test(text) ? Buffer.from(text, "hex") : null;
}

/**
 * Canonical padded base64 only. Tornado's lenient `b64decode` accepts more, but only values a
 * signer produced reach this point, and every Tornado signer writes canonical base64.
 */
function base64Decode(text: string): Buffer | null {
  return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text) ? Buffer.from(text, "base64") : null;
}

/** Tornado's `_websocket_mask`: XOR with the 4-byte mask repeated. */
function xorMask(mask: Buffer, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ mask[i % 4];
  return out;
}
