/**
 * The blog's CPU-bound work, run on the `ThreadPoolExecutor`: scrypt password hashing and
 * checking (about 50 ms of one core each with these parameters, far too long for the event loop).
 */
import { randomBytes, scryptSync, timingSafeEqual } from "node:crypto";

// RFC 7914 parameters OWASP lists for scrypt: N=2^17 would need 128 MiB per hash; 2^14 keeps a
// demo on a small machine responsive while still costing an attacker ~50 ms per guess.
const N = 16_384;
const R = 8;
const P = 1;
const KEY_LENGTH = 64;

/** `scrypt$N$r$p$<salt base64>$<hash base64>` for a password, with a fresh 16-byte salt. */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password.normalize("NFKC"), salt, KEY_LENGTH, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/** Whether `password` matches a value from {@link hashPassword} (constant-time comparison). */
export function checkPassword(password: string, stored: string): boolean {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, "base64");
  const expected = Buffer.from(parts[5]!, "base64");
  const actual = scryptSync(password.normalize("NFKC"), salt, expected.length, { N: n, r, p });
  return timingSafeEqual(actual, expected);
}
