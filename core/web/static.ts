/**
 * `StaticFileHandler`: serves files from a directory, streamed from disk with backpressure
 * (never read whole), with Tornado's caching rules (content-hash `ETag`, `Last-Modified`,
 * 304s, a ten-year `Cache-Control` for `?v=` URLs), single byte ranges (206/416), and a root
 * that nothing escapes (`..`, encoded or not, absolute paths, NUL bytes, backslashes, and
 * symlinks pointing out of the root, checked with `realpath`).
 */
import { createHash } from "node:crypto";
import { closeSync, createReadStream, openSync, readSync, statSync, type Stats } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { extname, isAbsolute, join, resolve, sep } from "node:path";
import { ErrorCode, HTTPError, TyphoonError } from "../errors.ts";
import { RequestHandler } from "./handler.ts";
import { etagMatches } from "../http/etag.ts";
import { encodedEtag, streamEncoding } from "../http/compress.ts";
import type { HandlerSettings } from "./settings.ts";

/** Init arguments of `StaticFileHandler`. */
export interface StaticFileOptions {
  /** The directory served. */
  path: string;
  /** The file served for a directory (`index.html`); without it a directory is a 403. */
  defaultFilename?: string;
}

/** Ten years, Tornado's `CACHE_MAX_AGE` for versioned (`?v=`) URLs, in seconds. */
export const CACHE_MAX_AGE = 86400 * 365 * 10;

const MIME_TYPES: Record<string, string> = {
  ".html": "text/html", ".htm": "text/html", ".css": "text/css", ".js": "text/javascript", ".mjs": "text/javascript",
  ".json": "application/json", ".map": "application/json", ".txt": "text/plain", ".md": "text/markdown",
  ".csv": "text/csv", ".xml": "application/xml", ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif", ".ico": "image/vnd.microsoft.icon",
  ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf", ".wasm": "application/wasm",
  ".pdf": "application/pdf", ".zip": "application/zip", ".gz": "application/gzip", ".mp4": "video/mp4",
  ".webm": "video/webm", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".wav": "audio/wav", ".webmanifest": "application/manifest+json",
};

interface Version {
  readonly mtimeMs: number;
  readonly size: number;
  readonly hash: string;
}

// Content hashes by absolute path, valid while the file's mtime and size are unchanged.
const versions = new Map<string, Version>();

/**
 * Serves the files under `path`. Mounted by the `staticPath` setting at `staticUrlPrefix`, or
 * by hand with a rule whose one group is the file's path.
 *
 * @example
 * new Application([["/assets/(.*)", StaticFileHandler, { path: "./public", defaultFilename: "index.html" }]]);
 */
export class StaticFileHandler extends RequestHandler {
  #root = "";
  #defaultFilename: string | undefined;

  override initialize(options?: unknown): void {
    const o = options as Partial<StaticFileOptions> | undefined;
    if (o === undefined || typeof o.path !== "string") {
      throw new TyphoonError(ErrorCode.HANDLER_ARGS, "StaticFileHandler needs { path } as its init arguments");
    }
    this.#root = resolve(o.path);
    this.#defaultFilename = o.defaultFilename;
  }

  /** Serves the file (HEAD: the same headers, no body). */
  async get(path?: string): Promise<void> {
    const file = await this.#resolve(path ?? "");
    if (file === null) return;
    const { absolute, stats } = file;
    const contentType = MIME_TYPES[extname(absolute).toLowerCase()] ?? "application/octet-stream";
    let etag = `"${await contentVersion(absolute, stats)}"`;
    // A compressed representation has its own ETag (RFC 9110 §8.8.3); a range is sent as is.
    const encoding = this.settings.compressResponse && this.request.headers.range === undefined
      ? streamEncoding(this.request.headers["accept-encoding"], contentType) : null;
    if (encoding !== null) etag = encodedEtag(etag, encoding);
    const modified = new Date(Math.floor(stats.mtimeMs / 1000) * 1000);
    this.setHeader("Etag", etag);
    this.setHeader("Last-Modified", modified);
    this.setHeader("Accept-Ranges", "bytes");
    this.setHeader("Content-Type", contentType);
    if (this.getQueryArgument("v", null) !== null) {
      this.setHeader("Expires", new Date(Date.now() + CACHE_MAX_AGE * 1000));
      this.setHeader("Cache-Control", `max-age=${CACHE_MAX_AGE}`);
    }
    if (this.#notModified(etag, modified)) {
      this.setStatus(304);
      return;
    }
    const range = byteRange(header(this.request.headers.range), stats.size);
    if (range === "unsatisfiable") {
      this.setStatus(416);
      this.setHeader("Content-Type", "text/plain");
      this.setHeader("Content-Range", `bytes */${stats.size}`);
      return;
    }
    const [start, end] = range ?? [0, stats.size];
    if (end - start !== stats.size) {
      this.setStatus(206);
      this.setHeader("Content-Range", `bytes ${start}-${end - 1}/${stats.size}`);
    }
    this.setHeader("Content-Length", end - start);
    if (this.request.method === "HEAD" || end === start) return;
    await this.#stream(absolute, start, end);
  }

  /**
   * The `?v=` version of a file under `staticPath`: the MD5 of its content, cached while its
   * modification time and size are unchanged (Tornado's `get_version`). `null` if it is missing.
   */
  static getVersion(settings: HandlerSettings, path: string): string | null {
    const root = settings.staticPath;
    if (root === undefined) throw new TyphoonError(ErrorCode.SETTING_MISSING, "Set the staticPath setting to use staticUrl()");
    const absolute = resolve(root, path.replace(/^\/+/, ""));
    try {
      const stats = statSync(absolute);
      const cached = versions.get(absolute);
      if (cached !== undefined && cached.mtimeMs === stats.mtimeMs && cached.size === stats.size) return cached.hash;
      const hash = hashFileSync(absolute);
      versions.set(absolute, { mtimeMs: stats.mtimeMs, size: stats.size, hash });
      return hash;
    } catch {
      return null;
    }
  }

  /** `staticUrlPrefix` + path + `?v=<version>` (Tornado's `make_static_url`). */
  static makeStaticUrl(settings: HandlerSettings, path: string): string {
    const url = (settings.staticUrlPrefix ?? "/static/") + path.replace(/^\/+/, "");
    const version = StaticFileHandler.getVersion(settings, path);
    return version === null ? url : `${url}?v=${version}`;
  }

  // Only the file's own path decides what is served; every way out of the root is a 403.
  async #resolve(path: string): Promise<{ absolute: string; stats: Stats } | null> {
    if (path.includes("\0") || path.includes("\\") || isAbsolute(path)) throw new HTTPError(403, `${JSON.stringify(path)} is not a valid path`);
    const root = this.#root;
    let absolute = join(root, path);
    if (absolute !== root && !absolute.startsWith(root + sep)) throw new HTTPError(403, `${path} is not in root static directory`);
    let stats = await statOrNull(absolute);
    if (stats === null) throw new HTTPError(404);
    if (stats.isDirectory() && this.#defaultFilename !== undefined) {
      const requestPath = this.request.path;
      if (!requestPath.endsWith("/")) {
        // "//evil.com" would be a redirect to another site (Tornado's open-redirect fix).
        if (requestPath.startsWith("//")) throw new HTTPError(403, "cannot redirect path with two initial slashes");
        this.redirect(`${requestPath}/`, true);
        return null;
      }
      absolute = join(absolute, this.#defaultFilename);
      stats = await statOrNull(absolute);
      if (stats === null) throw new HTTPError(404);
    }
    // A symlink inside the root may point anywhere: compare the real paths.
    const [realRoot, real] = await Promise.all([realpath(root), realpath(absolute)]);
    if (real !== realRoot && !real.startsWith(realRoot + sep)) throw new HTTPError(403, `${path} resolves outside the root static directory`);
    if (!stats.isFile()) throw new HTTPError(403, `${path} is not a file`);
    return { absolute, stats };
  }

  // Tornado's should_return_304: If-None-Match decides when present, else If-Modified-Since.
  #notModified(etag: string, modified: Date): boolean {
    const headers = this.request.headers;
    const ifNoneMatch = headers["if-none-match"];
    if (ifNoneMatch !== undefined) return etagMatches(ifNoneMatch, etag);
    const since = headers["if-modified-since"];
    if (since === undefined) return false;
    const time = Date.parse(since);
    return !Number.isNaN(time) && time >= modified.getTime();
  }

  async #stream(absolute: string, start: number, end: number): Promise<void> {
    const raw = this.request.raw;
    const stream = createReadStream(absolute, { start, end: end - 1, highWaterMark: 64 * 1024 });
    try {
      for await (const chunk of stream) {
        if (raw.socket?.destroyed === true) break;
        this.write(chunk as Buffer);
        // flush() resolves when the socket has taken the chunk: the file is read no faster.
        await this.flush();
      }
    } finally {
      stream.destroy();
    }
  }
}

/**
 * A single byte range from a `Range` header as `[start, end)`, `null` to send the whole file,
 * or `"unsatisfiable"` (416). Tornado's `_parse_request_range` and its RFC 9110 §14.1.2 rules.
 */
export function byteRange(header: string | undefined, size: number): [number, number] | null | "unsatisfiable" {
  if (header === undefined) return null;
  const eq = header.indexOf("=");
  if (eq === -1 || header.slice(0, eq).trim() !== "bytes") return null;
  const value = header.slice(eq + 1).trim();
  // "bytes=26" (no dash) reads as "26-", as Python's partition does in Tornado.
  const dash = value.indexOf("-");
  const first = (dash === -1 ? value : value.slice(0, dash)).trim();
  const last = dash === -1 ? "" : value.slice(dash + 1).trim();
  // Several ranges ("0-1,5-6") or junk: ignored, the whole file is sent (as Tornado does).
  if ((first !== "" && !/^\d+$/.test(first)) || (last !== "" && !/^\d+$/.test(last)) || (first === "" && last === "")) return null;
  let start: number | null = first === "" ? null : Number(first);
  let end: number | null = last === "" ? null : Number(last);
  if (start === null) {
    // A suffix range "-N": the last N bytes; "-0" asks for nothing and cannot be satisfied.
    if (end === 0) return "unsatisfiable";
    start = Math.max(0, size - end!);
    end = null;
  } else if (end !== null) {
    end += 1;
  }
  if (start >= size || (end !== null && start >= end)) return "unsatisfiable";
  if (end === null || end > size) end = size;
  return [start, end];
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch {
    return null;
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The MD5 of a file, read in chunks, cached while its mtime and size are unchanged. */
async function contentVersion(absolute: string, stats: Stats): Promise<string> {
  const cached = versions.get(absolute);
  if (cached !== undefined && cached.mtimeMs === stats.mtimeMs && cached.size === stats.size) return cached.hash;
  const md5 = createHash("md5");
  for await (const chunk of createReadStream(absolute, { highWaterMark: 64 * 1024 })) md5.update(chunk as Buffer);
  const hash = md5.digest("hex");
  versions.set(absolute, { mtimeMs: stats.mtimeMs, size: stats.size, hash });
  return hash;
}

function hashFileSync(absolute: string): string {
  const md5 = createHash("md5");
  const buffer = Buffer.allocUnsafe(64 * 1024);
  const fd = openSync(absolute, "r");
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) md5.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return md5.digest("hex");
}
