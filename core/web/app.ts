/**
 * `Application`: the rule table and settings of an app, and the dispatch of one request to a
 * new handler: path split, overload check, route match, group decoding, `handler.execute()`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { ErrorCode, HTTPError, TyphoonError } from "../errors.ts";
import { log, type Logger } from "../log.ts";
import { loopMonitor } from "../loop/loop-monitor.ts";
import { BlockingWatch } from "../loop/blocking.ts";
import { Router, type RouteMatch } from "./router.ts";
import { RequestHandler, noKwargs, type HandlerContext } from "./handler.ts";
import { HTTPServerRequest, hostNameOf } from "./request.ts";
import { sendErrorPage } from "../http/respond.ts";
import { STANDALONE, type HTTPServerOptions, type ServerContext } from "../server/options.ts";
import { HTTPServer } from "../server/httpserver.ts";
import { registerServable } from "../server/servable.ts";
import { autoreloadSpec } from "../server/autoreload.ts";
import { inject, type InjectOptions, type InjectResponse } from "./inject.ts";
import type { ApplicationView, HandlerSettings } from "./settings.ts";
import { StaticFileHandler } from "./static.ts";
import { compileHandlerSchema } from "./schema.ts";
import { buildOpenAPI, type OpenAPIDocument, type OpenAPIOptions } from "./openapi.ts";
import { acceptsUpgrades, rejectUpgrade, upgradeResponse } from "./upgrade.ts";
import { roundMs, writeAccessLog } from "./access-log.ts";
import { NO_ROUTE, requestMetrics, type RequestMetrics } from "./metrics.ts";
import { taskId } from "../server/process.ts";

/** A handler class: `RequestHandler` or a subclass. */
export type HandlerClass = typeof RequestHandler;

/** A rule built by {@link url}. */
export interface URLSpec {
  readonly pattern: string | RegExp;
  readonly handler: HandlerClass;
  readonly initArgs?: unknown;
  readonly name?: string;
}

/** A routing rule: `[pattern, Handler]`, with optional init arguments and name, or `url(...)`. */
export type Rule =
  | readonly [string | RegExp, HandlerClass]
  | readonly [string | RegExp, HandlerClass, unknown]
  | readonly [string | RegExp, HandlerClass, unknown, string]
  | URLSpec;

/**
 * A named rule. Tornado's `url()`.
 *
 * @example
 * new Application([url("/user/(\\d+)", UserHandler, undefined, "user")]).reverseUrl("user", 7); // "/user/7"
 */
export function url(pattern: string | RegExp, handler: HandlerClass, initArgs?: unknown, name?: string): URLSpec {
  return { pattern, handler, initArgs, ...(name === undefined ? {} : { name }) };
}

/**
 * Application settings (all optional). Apps may add their own keys. The settings a handler
 * reads are {@link HandlerSettings}; these add the ones that name handler classes.
 */
export interface AppSettings extends HandlerSettings {
  /** Handler for requests no rule matches (default: 404). */
  defaultHandlerClass?: HandlerClass;
  /**
   * The host whose `addHandlers` rules also serve requests whose `Host` matches no host rule
   * (Tornado's `default_host`; not for requests that came through a proxy with `X-Real-Ip`).
   */
  defaultHost?: string;
  defaultHandlerArgs?: unknown;
  /** Called once per finished request instead of the default access log. */
  logFunction?: (handler: RequestHandler) => void;
  /**
   * Reload the app when its sources or templates change (default: `debug`, except under a test
   * runner): its servers run under a supervisor that replaces the children one at a time.
   */
  autoreload?: boolean;
}

class NotFoundHandler extends RequestHandler {
  // Thrown before the method check, so any method on an unknown URL is a 404, not a 405.
  override initialize(): void {
    throw new HTTPError(404);
  }
  // An unknown URL is a 404 even with XSRF on, not a 403 (Tornado's ErrorHandler).
  override checkXsrfCookie(): void {}
}

interface HostRules {
  readonly host: RegExp;
  readonly router: Router<Target>;
}

interface Target {
  readonly handler: HandlerClass;
  readonly initArgs: unknown;
}

/**
 * A web application: rules, settings, and the entry points that serve it.
 *
 * @example
 * const app = new Application([["/", MainHandler], ["/sleep/(\\d+)", SleepHandler]]);
 * await app.listen(8888);
 */
export class Application implements ApplicationView {
  readonly settings: AppSettings;
  readonly #router = new Router<Target>();
  readonly #hosts: HostRules[] = [];
  readonly #listener: (req: IncomingMessage, res: ServerResponse) => void;
  readonly #watch: BlockingWatch | undefined;
  #metrics: RequestMetrics | null = null;

  constructor(rules: readonly Rule[] = [], settings: AppSettings = {}) {
    this.settings = settings;
    const threshold = settings.blockingThreshold;
    this.#watch = threshold === undefined ? undefined : new BlockingWatch(threshold, (message, fields) => {
      if (fields === undefined) this.#logger.warn(message);
      else this.#logger.warn(fields, message);
    });
    for (const rule of staticRules(settings)) addRule(this.#router, rule);
    for (const rule of rules) addRule(this.#router, rule);
    if (settings.defaultHandlerClass !== undefined) compileHandlerSchema(settings.defaultHandlerClass);
    this.#noteMetrics(rules);
    this.#listener = (req, res) => this.#handle(req, res, STANDALONE);
    registerServable(this, {
      handle: (req, res, server) => this.#handle(req, res, server),
      handleUpgrade: (req, socket, head, server) => this.#handleUpgrade(req, socket, head, server),
      autoreload: autoreloadSpec(settings.autoreload, settings.debug, settings["templatePath"]),
    });
  }

  /** Adds rules that apply only when the `Host` (lower-cased, port removed) matches `hostPattern`. */
  addHandlers(hostPattern: string | RegExp, rules: readonly Rule[]): void {
    const source = typeof hostPattern === "string" ? hostPattern : hostPattern.source;
    let host: RegExp;
    try {
      host = new RegExp(`^(?:${source.replace(/^\^/, "").replace(/\$$/, "")})$`, typeof hostPattern === "string" ? "i" : hostPattern.flags);
    } catch (err) {
      throw new TyphoonError(ErrorCode.ROUTE_PATTERN, `Invalid host pattern ${source}: ${(err as Error).message}`, { cause: err });
    }
    const router = new Router<Target>();
    for (const rule of rules) addRule(router, rule);
    this.#noteMetrics(rules);
    this.#hosts.push({ host, router });
  }

  /** The path of the rule named `name`, its groups filled with `args` (percent-encoded). */
  reverseUrl(name: string, ...args: unknown[]): string {
    for (const { router } of this.#hosts) if (router.has(name)) return router.reverse(name, args);
    return this.#router.reverse(name, args);
  }

  /**
   * The OpenAPI 3.1 document of the rules whose pattern can be reversed, from their handlers'
   * `static schema` (host rules first, as they are matched). Served by `OpenAPIHandler`.
   */
  openapi(options: OpenAPIOptions): OpenAPIDocument {
    const routes = [...this.#hosts.map((h) => h.router), this.#router].flatMap((router) => router.routes);
    return buildOpenAPI(routes.map((r) => ({ ...r, handler: r.target.handler })), options);
  }

  /** A `(req, res)` listener for `http.createServer` or any node:http host. */
  callback(): (req: IncomingMessage, res: ServerResponse) => void {
    return this.#listener;
  }

  /** Runs one request in-process through node:http, without a socket. */
  inject(options: InjectOptions): Promise<InjectResponse> {
    return inject(this.#listener, options);
  }

  /** Shorthand for `new HTTPServer(app, options).listen(port, host)`; resolves to the server. */
  async listen(port: number, host?: string, options?: HTTPServerOptions): Promise<HTTPServer> {
    const server = new HTTPServer(this, options);
    await server.listen(port, host);
    return server;
  }

  /**
   * The URL of a file under `staticPath`, versioned with `?v=<content hash>` (see
   * `StaticFileHandler`). Also `handler.staticUrl(path)`.
   */
  staticUrl(path: string): string {
    return StaticFileHandler.makeStaticUrl(this.settings, path);
  }

  /**
   * Serves an `Upgrade` request (called by `HTTPServer`): a WebSocket route runs its handler,
   * whose `get()` performs the handshake; no route is a 404, a WebSocket upgrade to any other
   * route a 400, both answered on the raw socket, which is then closed. Other upgrades (h2c)
   * are served as plain requests on that connection, which is then closed.
   */
  #handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, server: ServerContext): void {
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    const match = this.#find(req.headers.host, q === -1 ? target : target.slice(0, q), req.headers["x-real-ip"] !== undefined);
    if (match === null) return rejectUpgrade(socket, 404);
    if (!acceptsUpgrades(match.route.target.handler)) {
      if ((req.headers.upgrade ?? "").toLowerCase() === "websocket") return rejectUpgrade(socket, 400);
      // Another protocol (h2c, which `curl --http2` asks for): RFC 9110 §7.8 lets a server
      // ignore it, so the request is answered over HTTP/1.1 and the connection closed. Node
      // has already stopped parsing, so a body cannot be read: such a request is a 400.
      if (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0") return rejectUpgrade(socket, 400);
      if (req.headers["transfer-encoding"] !== undefined) return rejectUpgrade(socket, 400);
    }
    this.#handle(req, upgradeResponse(req, socket, head), server);
  }

  /**
   * The route for a request, as the dispatch would find it (also used by upgrades, e.g.
   * WebSocket). `host` is the raw `Host` header; it is parsed only when host rules exist.
   * `viaProxy` (an `X-Real-Ip` header) keeps the `defaultHost` rules out, as in Tornado.
   */
  #find(host: string | undefined, path: string, viaProxy = false): RouteMatch<Target> | null {
    if (this.#hosts.length === 0) return this.#router.match(path);
    const match = this.#hostMatch(hostNameOf(host ?? ""), path) ?? this.#router.match(path);
    if (match !== null || viaProxy) return match;
    const defaultHost = this.settings.defaultHost;
    return defaultHost === undefined ? null : this.#hostMatch(hostNameOf(defaultHost), path);
  }

  #hostMatch(hostName: string, path: string): RouteMatch<Target> | null {
    for (const { host, router } of this.#hosts) {
      if (host.test(hostName)) {
        const match = router.match(path);
        if (match !== null) return match;
      }
    }
    return null;
  }

  /** Serves one request. Called by `HTTPServer` with its context; never throws. */
  #handle(req: IncomingMessage, res: ServerResponse, server: ServerContext): void {
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    let path = q === -1 ? target : target.slice(0, q);
    const query = q === -1 ? "" : target.slice(q + 1);
    if (path.charCodeAt(0) !== 47 /* "/" */) {
      const absolute = absolutePath(path);
      if (absolute === null) return sendErrorPage(res, 400, req.headers.accept, undefined, closing(server));
      path = absolute;
    }
    // RFC 9112 §3.2: more than one Host, or one with whitespace (Tornado), is a 400 (node would
    // keep the first Host and drop the rest).
    const host = req.headers.host;
    if (host !== undefined && (host.includes(" ") || host.includes("\t") || hostCount(req.rawHeaders) > 1)) {
      return sendErrorPage(res, 400, req.headers.accept, undefined, true);
    }
    // RFC 9112 §6.1: a transfer coding other than chunked is not implemented (501); its body
    // cannot be framed, so the connection is closed after the answer.
    const coding = req.headers["transfer-encoding"];
    if (coding !== undefined && coding.toLowerCase() !== "chunked") return sendErrorPage(res, 501, req.headers.accept, undefined, true);
    const maxDelay = this.settings.maxEventLoopDelay;
    if (maxDelay !== undefined && loopMonitor().delay > maxDelay) {
      return sendErrorPage(res, 503, req.headers.accept, { "retry-after": String(Math.max(1, Math.ceil(loopMonitor().delay / 1000))) }, closing(server));
    }
    const match = this.#find(host, path, req.headers["x-real-ip"] !== undefined);
    let handler: HandlerClass;
    let initArgs: unknown;
    let pathArgs = NO_GROUPS;
    let pathKwargs = noKwargs();
    let rawGroups = false;
    if (match === null) {
      handler = this.settings.defaultHandlerClass ?? NotFoundHandler;
      initArgs = this.settings.defaultHandlerArgs;
    } else {
      handler = match.route.target.handler;
      initArgs = match.route.target.initArgs;
      // A handler with its own decodeArgument decodes the groups' bytes itself (Tornado).
      rawGroups = match.groups.length > 0 && handler.prototype.decodeArgument !== RequestHandler.prototype.decodeArgument;
      try {
        const decoded = rawGroups ? [...match.groups] : decodeGroups(match.groups);
        if (match.route.groupNames === null) pathArgs = decoded;
        else {
          pathKwargs = Object.create(null) as Record<string, string | undefined>;
          match.route.groupNames.forEach((name, i) => { pathKwargs[name] = decoded[i]; });
        }
      } catch {
        return sendErrorPage(res, 400, req.headers.accept, undefined, closing(server));
      }
    }
    // The route label of logs and metrics: the rule's name or pattern, never the raw path.
    const route = match === null ? NO_ROUTE : match.route.name ?? match.route.source;
    const ctx: HandlerContext = {
      req, res, server, initArgs, pathArgs, pathKwargs, watch: this.#watch, logRequest: this.#logRequest, rawGroups, route, detached: this.#detached,
    };
    let instance: RequestHandler;
    try {
      instance = new handler(this, new HTTPServerRequest(req, path, query, server), ctx);
    } catch (err) {
      // A throwing constructor or setDefaultHeaders() runs in node's 'request' event: uncaught,
      // it would stop the process.
      log.error(`Uncaught exception constructing ${handler.name} for ${req.method ?? "GET"} ${target}`, err);
      return sendErrorPage(res, 500, req.headers.accept, undefined, closing(server));
    }
    if (this.#metrics !== null) this.#metrics.inFlight++;
    void instance.execute();
  }

  /** The logger of this app's records: the `logger` setting, else the process-wide one. */
  get #logger(): Logger {
    return this.settings.logger ?? log;
  }

  /**
   * Records a finished request: request metrics (when the app serves `MetricsHandler`), then
   * `settings.logFunction`, or the access log (one `info` record) unless `accessLog` is false.
   * `route` is the rule's name or pattern, `bytes` the body bytes sent.
   */
  readonly #logRequest = (handler: RequestHandler, route: string, bytes: number): void => {
    const r = handler.request;
    const metrics = this.#metrics;
    const custom = this.settings.logFunction;
    const accessLog = custom === undefined && this.settings.accessLog !== false;
    // The clock is read only when a metric or the access record needs the duration, and once:
    // the access record's time is the same reading.
    const now = metrics !== null || accessLog ? performance.now() : 0;
    const ms = now - r.startTime;
    if (metrics !== null) {
      metrics.inFlight--;
      metrics.observe(r.method, route, handler.getStatus(), ms / 1000);
    }
    if (custom !== undefined) custom(handler);
    if (!accessLog) return;
    writeAccessLog(this.#logger, {
      reqId: handler.requestId, method: r.method, path: r.path, route, status: handler.getStatus(),
      ms: roundMs(ms), bytes, remoteIp: r.remoteIp, taskId: TASK_ID,
    }, now);
  };

  // A detached request (a WebSocket, a mounted node app) is no longer in flight here.
  readonly #detached = (): void => {
    if (this.#metrics !== null) this.#metrics.inFlight--;
  };

  // An app routing to a handler class marked `recordsMetrics` (MetricsHandler) records request metrics.
  #noteMetrics(rules: readonly Rule[]): void {
    if (this.#metrics !== null) return;
    for (const rule of rules) {
      const handler = isSpec(rule) ? rule.handler : rule[1];
      if ((handler as { recordsMetrics?: unknown }).recordsMetrics === true) {
        this.#metrics = requestMetrics();
        return;
      }
    }
  }
}

/** This process's task id, for the access log (fixed for the life of the process). */
const TASK_ID = taskId();

// Tornado's static rules: the prefix, plus /favicon.ico and /robots.txt from the same directory.
function staticRules(settings: AppSettings): Rule[] {
  const path = settings.staticPath;
  if (path === undefined) return [];
  const prefix = settings.staticUrlPrefix ?? "/static/";
  const args = { path };
  return [
    [`${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(.*)`, StaticFileHandler, args],
    ["/(favicon\\.ico)", StaticFileHandler, args],
    ["/(robots\\.txt)", StaticFileHandler, args],
  ];
}

function addRule(router: Router<Target>, rule: Rule): void {
  compileHandlerSchema(isSpec(rule) ? rule.handler : rule[1]);
  if (isSpec(rule)) router.add(rule.pattern, { handler: rule.handler, initArgs: rule.initArgs }, rule.name);
  else router.add(rule[0], { handler: rule[1], initArgs: rule[2] }, rule[3]);
}

function isSpec(rule: Rule): rule is URLSpec {
  return !Array.isArray(rule);
}

/** The arguments of a route without groups: one frozen empty list, not a new one per request. */
const NO_GROUPS: (string | undefined)[] = Object.freeze([]) as unknown as (string | undefined)[];

/**
 * Captured groups, percent-decoded as UTF-8 (`+` stays `+`: it is not a space in a path). The
 * router's fresh list is returned as it is when no group has a `%` (the common case).
 */
function decodeGroups(groups: readonly (string | undefined)[]): (string | undefined)[] {
  let decoded: (string | undefined)[] | null = null;
  for (let i = 0; i < groups.length; i++) {
    const value = groups[i];
    if (value !== undefined && value.includes("%")) (decoded ??= [...groups])[i] = decodeURIComponent(value);
  }
  return decoded ?? (groups as (string | undefined)[]);
}

// Early error pages honour noKeepAlive and draining like a handler's response does.
function closing(server: ServerContext): boolean {
  return server.noKeepAlive || server.drain.draining;
}

function hostCount(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4 && (name === "Host" || name === "host" || name.toLowerCase() === "host")) count++;
  }
  return count;
}

// RFC 9112 §3.2.2: absolute-form targets (sent to proxies) carry the path after the authority.
function absolutePath(target: string): string | null {
  if (target === "*") return "*";
  if (!/^https?:\/\//i.test(target)) return null;
  try {
    return new URL(target).pathname;
  } catch {
    return null;
  }
}
