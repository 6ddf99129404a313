/**
 * Request bodies parsed: query strings, form-urlencoded, multipart and JSON bodies into
 * arguments and files, leniently as Tornado does. Reading a body off the socket is
 * `body-read.ts`.
 */
import { BadBodyError, HTTPError } from "../errors.ts";
import { log } from "../log.ts";
import { mediaType } from "./headers.ts";
import { decodeFormComponent, decodeUtf8 as decodeText, percentBytes } from "./percent.ts";

/** Arguments by name; every name has one or more values, in order. */
export type ArgumentMap = Record<string, string[]>;

/** A file uploaded in a multipart body. */
export interface UploadedFile {
  readonly filename: string;
  readonly contentType: string;
  readonly body: Buffer;
}

/** Uploaded files by field name. */
export type FileMap = Record<string, UploadedFile[]>;

/**
 * Parses a query string or form body. Blank values are kept (Tornado's `keep_blank_values`); a
 * stray `%` stays as it is; invalid UTF-8 → 400.
 */
export function parseQueryString(query: string): ArgumentMap {
  const out = Object.create(null) as ArgumentMap;
  if (query === "") return out;
  for (const pair of query.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = decodeFormComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? "" : decodeFormComponent(pair.slice(eq + 1));
    (out[name] ??= []).push(value);
  }
  return out;
}

/**
 * The parsed body: its arguments and files (`null`: none), and the JSON value for a JSON body,
 * so it is parsed once. A JSON body's arguments are made from `json` only when asked for
 * ({@link jsonArguments}): most JSON handlers never read them.
 */
export interface ParsedBody {
  readonly arguments: ArgumentMap | null;
  readonly files: FileMap | null;
  /** The parsed value of a JSON body (absent for other bodies). */
  readonly json?: unknown;
}

const NOTHING: ParsedBody = { arguments: null, files: null };

/**
 * Parses a body by its `Content-Type`, leniently as Tornado's `parse_body_arguments` does:
 * form-urlencoded and multipart fill arguments and files, a JSON object's scalar members
 * become arguments too; what cannot be parsed (binary data under a form type, invalid JSON, a
 * broken multipart body) is logged and left out, and the request is served with its raw body
 * in `request.body`. Only `getJsonBody()` and validation reject a body.
 */
export function parseBody(contentType: string | undefined, body: Buffer): ParsedBody {
  try {
    return parseStrictly(contentType, body);
  } catch (err) {
    if (!(err instanceof HTTPError) || err.status !== 400) throw err;
    log.warn(`Body arguments left out (the raw body is in request.body): ${err.logMessage ?? err.message}`);
    return NOTHING;
  }
}

function parseStrictly(contentType: string | undefined, body: Buffer): ParsedBody {
  if (contentType === undefined || body.length === 0) return NOTHING;
  const type = mediaType(contentType);
  if (type === "application/json" || type.endsWith("+json")) return { arguments: null, files: null, json: parseJson(body) };
  if (type === "application/x-www-form-urlencoded") return { arguments: parseForm(body), files: null };
  if (type === "multipart/form-data") {
    const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
    if (boundary === null) throw new HTTPError(400, "multipart/form-data without a boundary");
    return parseMultipart(body, boundary[1] ?? boundary[2]!);
  }
  return NOTHING;
}

/** A JSON object body's scalar members as arguments (strings); other JSON values have none. */
export function jsonArguments(value: unknown): ArgumentMap {
  const args = Object.create(null) as ArgumentMap;
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const [name, v] of Object.entries(value)) {
      if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") args[name] = [String(v)];
    }
  }
  return args;
}

// A form body: UTF-8 text on the fast path; binary data or escapes that are not UTF-8 are
// parsed argument by argument, keeping the ones that decode (curl --data-binary sends a file
// under this type).
function parseForm(body: Buffer): ArgumentMap {
  let text: string | null = null;
  try {
    text = utf8.decode(body);
  } catch {
    // Not UTF-8 as a whole: below, one argument at a time.
  }
  if (text !== null) {
    try {
      return parseQueryString(text);
    } catch (err) {
      if (!(err instanceof HTTPError)) throw err;
    }
  }
  const out = Object.create(null) as ArgumentMap;
  let dropped = 0;
  for (const pair of body.toString("latin1").split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    try {
      const name = decodeText(percentBytes(eq === -1 ? pair : pair.slice(0, eq), true), "a form argument name");
      const value = eq === -1 ? "" : decodeText(percentBytes(pair.slice(eq + 1), true), `form argument ${name}`);
      (out[name] ??= []).push(value);
    } catch {
      dropped++;
    }
  }
  if (dropped > 0) log.warn(`Invalid x-www-form-urlencoded body: ${dropped} argument(s) that are not UTF-8 left out (the raw body is in request.body)`);
  return out;
}

/** Parses a JSON body; invalid JSON or UTF-8 → 400. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(decodeUtf8(body, "JSON body"));
  } catch (err) {
    if (err instanceof HTTPError) throw err;
    throw badBody(`Invalid JSON body: ${(err as Error).message}`);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(body: Buffer, what: string): string {
  try {
    return utf8.decode(body);
  } catch {
    throw badBody(`Invalid UTF-8 in the ${what}`);
  }
}

function badBody(message: string): HTTPError {
  return new BadBodyError(message);
}

/** Parses `multipart/form-data` (RFC 7578) held whole in memory. */
function parseMultipart(body: Buffer, boundary: string): ParsedBody {
  const args = Object.create(null) as ArgumentMap;
  const files = Object.create(null) as FileMap;
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  if (pos === -1) throw badBody("multipart body without its boundary");
  for (;;) {
    pos += delimiter.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // "--": the closing delimiter
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    const next = body.indexOf(delimiter, pos);
    if (next === -1) throw badBody("multipart body is truncated (no closing boundary)");
    // The part ends with CRLF before the next delimiter.
    const part = body.subarray(pos, next >= 2 && body[next - 2] === 0x0d ? next - 2 : next);
    const headerEnd = part.indexOf("\r\n\r\n");
    if (headerEnd === -1) throw badBody("multipart part without headers");
    const headers = part.subarray(0, headerEnd).toString("latin1");
    const content = part.subarray(headerEnd + 4);
    const disposition = /^content-disposition:\s*form-data(.*)$/im.exec(headers);
    if (disposition === null) throw badBody("multipart part without Content-Disposition: form-data");
    const name = dispositionParam(disposition[1]!, "name");
    if (name === null) throw badBody("multipart part without a name");
    const filename = dispositionParam(disposition[1]!, "filename");
    // An empty file input is sent with `filename=""`: Tornado makes it an empty argument, not a file.
    if (filename !== null && filename !== "") {
      const type = /^content-type:\s*(.+)$/im.exec(headers)?.[1]?.trim() ?? "application/unknown";
      (files[name] ??= []).push({ filename, contentType: type, body: Buffer.from(content) });
    } else {
      (args[name] ??= []).push(decodeUtf8(content, `multipart field ${name}`));
    }
    pos = next;
  }
  return { arguments: args, files };
}

function dispositionParam(params: string, key: string): string | null {
  const m = new RegExp(`;\\s*${key}="((?:[^"\\\\]|\\\\.)*)"|;\\s*${key}=([^;\\s]+)`, "i").exec(params);
  if (m === null) return null;
  const raw = m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!;
  // Header bytes were read as latin1; browsers send UTF-8 names.
  return Buffer.from(raw, "latin1").toString("utf8");
}
