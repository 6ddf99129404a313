/**
 * Percent-decoding the way Tornado reads query strings and form bodies: a `%` that does not start
 * a valid escape is kept as it is (`discount=50%` is `50%`, Python's `unquote`), the bytes are
 * then decoded as UTF-8, and only invalid UTF-8 is an error (400). Also the byte form of an
 * argument map, for handlers that decode arguments themselves (`decodeArgument`).
 */
import { HTTPError } from "../errors.ts";

/** Arguments by name with their raw (percent-decoded, not yet text-decoded) bytes. */
export type ArgumentBytes = Record<string, Buffer[]>;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder("utf-8");

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 32;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/**
 * The bytes a percent-encoded component stands for; with `plusIsSpace`, `+` is a space (query
 * strings and forms, not paths). Malformed escapes are kept literally. `text` is read as
 * `encoding`: latin1 when it holds one byte per character (node's request target, a body read
 * byte for byte), UTF-8 when it is already text.
 */
export function percentBytes(text: string, plusIsSpace: boolean, encoding: "latin1" | "utf8" = "latin1"): Buffer {
  const source = Buffer.from(text, encoding);
  const out = Buffer.allocUnsafe(source.length);
  let n = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === 0x25 /* % */ && i + 2 < source.length) {
      const hi = hexValue(source[i + 1]!);
      const lo = hexValue(source[i + 2]!);
      if (hi >= 0 && lo >= 0) {
        out[n++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    out[n++] = plusIsSpace && c === 0x2b /* + */ ? 0x20 : c;
  }
  return out.subarray(0, n);
}

/**
 * Decodes one query or form component to text: `+` is a space, escapes are UTF-8, a stray `%`
 * stays. Invalid UTF-8 → 400 ("Invalid unicode", as Tornado's `decode_argument`).
 */
export function decodeFormComponent(text: string): string {
  const spaced = text.includes("+") ? text.replace(/\+/g, " ") : text;
  if (!spaced.includes("%")) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    // A stray `%` or invalid UTF-8: decode byte by byte, keeping what is not an escape. The
    // text's own characters stay as they are (UTF-8 there and back), as on the fast path.
    return decodeUtf8(percentBytes(spaced, false, "utf8"), `argument ${JSON.stringify(text.slice(0, 64))}`);
  }
}

/** UTF-8 bytes to text; invalid → 400 ("Invalid unicode in <what>", logged, not sent). */
export function decodeUtf8(bytes: Buffer, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new HTTPError(400, `Invalid unicode in ${what}`);
  }
}

/**
 * Parses a query string or form body into names and raw value bytes (names decoded leniently as
 * UTF-8). Blank values are kept, as Tornado's `keep_blank_values`.
 */
export function parseArgumentBytes(query: string): ArgumentBytes {
  const out = Object.create(null) as ArgumentBytes;
  if (query === "") return out;
  for (const pair of query.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = lenientUtf8.decode(percentBytes(eq === -1 ? pair : pair.slice(0, eq), true));
    const value = eq === -1 ? Buffer.alloc(0) : percentBytes(pair.slice(eq + 1), true);
    (out[name] ??= []).push(value);
  }
  return out;
}
