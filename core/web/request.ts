/**
 * The parsed request a handler sees as `this.request`: method, path and query, headers, remote
 * address (with `xheaders` behind a proxy), body and its arguments, files and cookies.
 *
 * Everything that costs something to parse (query arguments, cookies) is parsed on first use,
 * so a handler that never reads them never pays for them. The same holds for what costs an
 * object or a string per request (the headers object node builds on first access, the client
 * address, the version, the empty argument maps): read on first use, then kept.
 */
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { parseCookies } from "../http/cookies.ts";
import { jsonArguments, parseJson, parseQueryString, type ArgumentMap, type FileMap, type ParsedBody } from "../http/body.ts";

/** How the server that received the request interprets proxies. */
export interface ProxyOptions {
  readonly xheaders: boolean;
  readonly trustedDownstream: readonly string[];
}

/**
 * An HTTP request, as parsed by typhoon. Tornado's `HTTPServerRequest`.
 */
/** Sets a request's body and its parsed arguments (the lifecycle's body step). Internal. */
export let setRequestBody: (request: HTTPServerRequest, body: Buffer, parsed: ParsedBody) => void;

/**
 * The request's body parsed as JSON, parsed once: by the body step for a JSON body, else on the
 * first call (shared by `getJsonBody()` and schema validation). Invalid JSON → 400. Internal.
 */
export let requestJson: (request: HTTPServerRequest) => unknown;

export class HTTPServerRequest {
  /** Node's underlying request, for code that needs the raw stream. */
  readonly raw: IncomingMessage;
  readonly method: string;
  /** The request target as received: path and query. */
  readonly uri: string;
  /** The path, still percent-encoded, without the query string. */
  readonly path: string;
  /** The query string without `?` (empty when there is none). */
  readonly query: string;
  /** Monotonic milliseconds (`performance.now()`) when the request arrived. */
  readonly startTime: number;

  #remoteIp: string | null = null;
  #protocol: string | null = null;
  #bodyArguments: ArgumentMap | null = null;
  #files: FileMap | null = null;
  #queryArguments: ArgumentMap | null = null;
  #arguments: ArgumentMap | null = null;
  #cookies: Record<string, string> | null = null;
  #hostName: string | null = null;
  #json: unknown = NOT_PARSED;
  /** The body arguments are a JSON body's members, made on first use. */
  #argumentsFromJson = false;

  constructor(req: IncomingMessage, path: string, query: string, proxy: ProxyOptions | null) {
    this.raw = req;
    this.method = req.method ?? "GET";
    this.uri = req.url ?? "/";
    this.path = path;
    this.query = query;
    this.startTime = performance.now();
    if (proxy !== null && proxy.xheaders) this.#applyXHeaders(proxy.trustedDownstream);
  }

  /** `HTTP/1.1` or `HTTP/1.0`. */
  get version(): string {
    const version = this.raw.httpVersion;
    return version === "1.1" ? "HTTP/1.1" : `HTTP/${version}`;
  }

  /** The request headers, by lower-cased name (node builds this object on first access). */
  get headers(): IncomingHttpHeaders {
    return this.raw.headers;
  }

  /** The client's address; with `xheaders`, the one the proxy reports. */
  get remoteIp(): string {
    return (this.#remoteIp ??= plainAddress(this.raw.socket?.remoteAddress));
  }

  set remoteIp(ip: string) {
    this.#remoteIp = ip;
  }

  /** `http` or `https`; with `xheaders`, the one the proxy reports. */
  get protocol(): string {
    return (this.#protocol ??= isEncrypted(this.raw) ? "https" : "http");
  }

  set protocol(protocol: string) {
    this.#protocol = protocol;
  }

  /** The `Host` header, or `127.0.0.1` when absent. */
  get host(): string {
    return this.raw.headers.host ?? "127.0.0.1";
  }

  /** The lower-cased host without its port. */
  get hostName(): string {
    return (this.#hostName ??= hostNameOf(this.host));
  }

  /** The whole body (empty until read, and for streaming handlers). */
  body: Buffer = EMPTY;

  /** Arguments from a form-urlencoded, multipart or JSON-object body. */
  get bodyArguments(): ArgumentMap {
    return (this.#bodyArguments ??= this.#argumentsFromJson ? jsonArguments(this.#json) : Object.create(null) as ArgumentMap);
  }

  set bodyArguments(args: ArgumentMap) {
    this.#bodyArguments = args;
  }

  /** Uploaded files of a multipart body, by field name. */
  get files(): FileMap {
    return (this.#files ??= Object.create(null) as FileMap);
  }

  set files(files: FileMap) {
    this.#files = files;
  }

  /** Query arguments; in the query string `+` is a space. Invalid percent-encoding → 400. */
  get queryArguments(): ArgumentMap {
    return (this.#queryArguments ??= parseQueryString(this.query));
  }

  /** Query and body arguments merged (query values first, as Tornado does). */
  get arguments(): ArgumentMap {
    if (this.#arguments === null) {
      const merged = Object.create(null) as ArgumentMap;
      for (const source of [this.queryArguments, this.bodyArguments]) {
        for (const name in source) (merged[name] ??= []).push(...source[name]!);
      }
      this.#arguments = merged;
    }
    return this.#arguments;
  }

  /** Cookies sent by the client, by name. */
  get cookies(): Record<string, string> {
    return (this.#cookies ??= parseCookies(this.headers.cookie));
  }

  /** The full URL of the request. */
  fullUrl(): string {
    return `${this.protocol}://${this.host}${this.uri}`;
  }

  /** Milliseconds since the request arrived. */
  requestTime(): number {
    return performance.now() - this.startTime;
  }

  static {
    // The lifecycle's body step is the only writer of the body: a module function, not a
    // public method, so the request's public face stays API.md's.
    setRequestBody = (request, body, parsed) => {
      request.body = body;
      request.#bodyArguments = parsed.arguments;
      request.#files = parsed.files;
      request.#arguments = null;
      const json = "json" in parsed;
      request.#json = json ? parsed.json : NOT_PARSED;
      request.#argumentsFromJson = json;
    };
    requestJson = (request) => {
      if (request.#json === NOT_PARSED) request.#json = parseJson(request.body);
      return request.#json;
    };
  }

  // Tornado's HTTP1ServerConnection xheaders rules: the last X-Forwarded-For hop that is not a
  // trusted downstream proxy, then X-Real-Ip; only a valid IP is taken.
  #applyXHeaders(trusted: readonly string[]): void {
    const h = this.headers;
    let ip = this.remoteIp;
    const forwarded = h["x-forwarded-for"];
    if (typeof forwarded === "string") {
      const hops = forwarded.split(",");
      for (let i = hops.length - 1; i >= 0; i--) {
        ip = hops[i]!.trim();
        if (!trusted.includes(ip)) break;
      }
    }
    const real = h["x-real-ip"];
    if (typeof real === "string") ip = real.trim();
    if (isIP(ip) !== 0) this.remoteIp = ip;
    const scheme = h["x-scheme"] ?? h["x-forwarded-proto"];
    if (typeof scheme === "string") {
      const proto = scheme.split(",").pop()!.trim().toLowerCase();
      if (proto === "http" || proto === "https") this.protocol = proto;
    }
  }
}

const EMPTY = Buffer.alloc(0);
const NOT_PARSED: unique symbol = Symbol("not parsed");

// A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6 (`::ffff:127.0.0.1`).
function plainAddress(address: string | undefined): string {
  if (address === undefined) return "127.0.0.1";
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

function isEncrypted(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
}

/** The lower-cased host name of a `Host` header, without its port (`[::1]` kept whole). */
export function hostNameOf(host: string): string {
  const lower = host.toLowerCase();
  if (lower.startsWith("[")) {
    const end = lower.indexOf("]");
    return end === -1 ? lower : lower.slice(0, end + 1);
  }
  const colon = lower.indexOf(":");
  return colon === -1 ? lower : lower.slice(0, colon);
}
