/**
 * Request ids and the access log: the id a request is known by in every record about it (the
 * client's `X-Request-Id` when sane, else one generated here), and the one `info` record written
 * per finished request.
 *
 * Both run on every request, so both are cheap: an id is a per-process random prefix and a
 * counter (no randomness per request), and the access record is one flat object of fixed shape,
 * which V8 serializes on its fast path.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { jsonRecordWriter, levelEnabled, type Logger } from "../log.ts";
import { jsonInner } from "../log-record.ts";

/** The header a request id is read from and sent back in, unless `requestIdHeader` renames it. */
export const REQUEST_ID_HEADER = "x-request-id";

/** Longest client-supplied id accepted (characters). */
const MAX_ID_LENGTH = 200;

// Unique across processes and restarts without coordination: 8 random hex digits per process.
const prefix = randomBytes(4).toString("hex");
let counter = 0;

/** A new request id, e.g. `3f9a0c1e-1a`: this process's random prefix and a base-36 counter. */
export function generateRequestId(): string {
  return `${prefix}-${(++counter).toString(36)}`;
}

/** Whether a client's id is usable: 1–200 visible ASCII characters (no spaces or controls). */
export function isSaneRequestId(value: string): boolean {
  const n = value.length;
  if (n === 0 || n > MAX_ID_LENGTH) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/**
 * The id of a request: the client's header (`header`, lower-case; `false` ignores the client)
 * when it is sane, else a generated one.
 */
export function requestIdOf(req: IncomingMessage, header: string | false): string {
  if (header !== false) {
    const given = req.headers[header];
    if (typeof given === "string" && isSaneRequestId(given)) return given;
  }
  return generateRequestId();
}

/** What the access log needs of a finished request. */
export interface AccessFacts {
  readonly reqId: string;
  readonly method: string;
  readonly path: string;
  readonly route: string;
  readonly status: number;
  readonly ms: number;
  readonly bytes: number;
  readonly remoteIp: string;
  readonly taskId: number | null;
}

/**
 * Writes the access record of one finished request: `info`, with the facts as fields and
 * Tornado's access line as the message (`200 GET /path (127.0.0.1) 0.42ms`). typhoon's own JSON
 * logger takes the facts and renders them with its batch (each string escaped once, no object
 * walked, the route's escaping kept); any other logger gets the facts and the message. `at`: when
 * the request finished, as `performance.now()` read it (default: now).
 */
export function writeAccessLog(logger: Logger, facts: AccessFacts, at?: number): void {
  const json = jsonRecordWriter(logger, "info");
  if (json === null) {
    // A logger that would drop the record is not handed one (nor its message built).
    if (!levelEnabled(logger, "info")) return;
    logger.info(facts, `${facts.status} ${facts.method} ${facts.path} (${facts.remoteIp}) ${formatMs(facts.ms)}ms`);
    return;
  }
  json.writeRecord("info", facts, accessMembers, at);
}

/** The access record's fields and message as JSON members. */
function accessMembers(facts: AccessFacts): string {
  const { status, bytes } = facts;
  // A method is an HTTP token (node's parser and inject() both insist): nothing to escape.
  const method = facts.method;
  const remoteIp = jsonInner(facts.remoteIp);
  const reqId = jsonInner(facts.reqId);
  const path = jsonInner(facts.path);
  const route = routeText(facts.route);
  // ms to 2 decimals as Tornado prints them, from integers: `whole` and `.dd`.
  const hundredths = Math.round(facts.ms * 100);
  const fraction = FRACTIONS[hundredths % 100]!;
  const whole = (hundredths - (hundredths % 100)) / 100;
  return `,"reqId":"${reqId}","method":"${method}","path":"${path}","route":"${route}","status":${status}`
    + `,"ms":${whole}${fraction},"bytes":${bytes},"remoteIp":"${remoteIp}","taskId":${facts.taskId ?? "null"}`
    + `,"msg":"${status} ${method} ${path} (${remoteIp}) ${whole}${fraction}ms"`;
}

/** Milliseconds with 2 decimals, as Tornado's access line prints them (`0.40`). */
export function formatMs(ms: number): string {
  return ms.toFixed(2);
}

/** `.00` to `.99`. */
const FRACTIONS: readonly string[] = Array.from({ length: 100 }, (_, i) => `.${String(i).padStart(2, "0")}`);

// Routes are few (the rule table's names and patterns) and patterns often need escaping (`\d`):
// each is escaped once.
const routeTexts = new Map<string, string>();
const MAX_ROUTE_TEXTS = 10_000;

function routeText(route: string): string {
  let text = routeTexts.get(route);
  if (text === undefined) {
    text = jsonInner(route);
    if (routeTexts.size < MAX_ROUTE_TEXTS) routeTexts.set(route, text);
  }
  return text;
}

/** Milliseconds rounded to 2 decimals, for the record. */
export function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
