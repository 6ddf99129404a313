/**
 * typhoon's logging: the pino-compatible {@link Logger} interface an app may supply
 * (`AppSettings.logger`; a real `pino()` instance fits), typhoon's own default logger (readable
 * lines on a terminal, one JSON object a line otherwise), and {@link log}, the process-wide logger
 * the framework writes to, which {@link setLogger} replaces (with a logger, or a plain
 * `(level, message)` sink as before).
 *
 * The default logger's JSON lines have pino's shape (`level` as pino's number, `time` in epoch
 * ms, `pid`, `hostname`, the bindings and fields, `msg`; rendered by `log-record.ts`), so pino's
 * tools read them. Lines are gathered and written together: JSON lines every
 * {@link LoggerOptions.flushMs} ms (a write per request is most of what an access log costs),
 * text lines once per event-loop turn (a person is reading them); what is pending is written at
 * once past 16 KiB and at exit.
 */
import { hostname } from "node:os";
import { clock, epochMsText, errorText, jsonMembers, LEVELS, normalize, RECORD_HEADS, TEXT_LABELS, textPairs, type LogLevel } from "./log-record.ts";
import { BatchedWriter, type LogDestination } from "./log-writer.ts";

export type { LogDestination, LogLevel };

/**
 * One logging method, pino's calling convention: `(fields, msg?)`, `(msg)` or `(err, msg?)`.
 * typhoon's own loggers also take `(msg, err)`, the framework's older form.
 */
export interface LogFn {
  (fields: object, msg?: string): void;
  (msg: string, err?: unknown): void;
}

/** A pino-compatible logger: what `AppSettings.logger` accepts and what `this.log` is. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** A logger that adds `bindings` to every record. */
  child(bindings: Record<string, unknown>): Logger;
}

/** The older form of a log destination: one call per record, the message as text. */
export type LogSink = (level: LogLevel, message: string) => void;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lowest level written (default `TYPHOON_LOG_LEVEL`, else `info`). */
  level?: LogLevel;
  /** `json` or `text` (default `TYPHOON_LOG_FORMAT`, else `text` on a terminal and `json` otherwise). */
  format?: "json" | "text";
  /**
   * Default `process.stderr`, as Tornado's logging: stdout stays the app's own output, and
   * journald, Docker and Kubernetes collect both streams.
   */
  destination?: LogDestination;
  /**
   * How long lines wait to be written together: default 10 ms for JSON, 0 (once per event-loop
   * turn) for text. Lines pending at exit are written then; a process killed with SIGKILL loses
   * at most this much.
   */
  flushMs?: number;
}

/** What every logger of one family shares: level, format, destination and the fixed prefix. */
interface Core {
  readonly min: number;
  readonly json: boolean;
  readonly out: BatchedWriter;
  /** `"pid":…,"hostname":…` (JSON only). */
  readonly base: string;
}

/** typhoon's own logger; `child()` precomputes its bindings once. */
class TyphoonLogger implements Logger, JsonRecordWriter {
  readonly #core: Core;
  /** The bindings as JSON members (`,"reqId":"…"`) or text (` reqId=…`), ready to splice. */
  readonly #bound: string;
  /** What follows `time` in each JSON record: `,"pid":…,"hostname":…` and the bindings. */
  readonly #afterTime: string;

  constructor(core: Core, bound: string) {
    this.#core = core;
    this.#bound = bound;
    this.#afterTime = `,${core.base}${bound}`;
  }

  debug(fields: object | string, msg?: unknown): void { if (this.#core.min <= 20) this.#write("debug", fields, msg); }
  info(fields: object | string, msg?: unknown): void { if (this.#core.min <= 30) this.#write("info", fields, msg); }
  warn(fields: object | string, msg?: unknown): void { if (this.#core.min <= 40) this.#write("warn", fields, msg); }
  error(fields: object | string, msg?: unknown): void { this.#write("error", fields, msg); }

  child(bindings: Record<string, unknown>): Logger {
    const core = this.#core;
    const extra = core.json ? jsonMembers(bindings) : textPairs(bindings);
    return new TyphoonLogger(core, this.#bound + extra);
  }

  /** Whether this logger writes records at `level`. */
  writes(level: LogLevel): boolean {
    return this.#core.min <= LEVELS[level];
  }

  /** Whether this logger writes JSON records at `level`. */
  writesJson(level: LogLevel): boolean {
    return this.#core.json && this.writes(level);
  }

  writeRecord<T>(level: LogLevel, facts: T, members: (facts: T) => string, at = performance.now()): void {
    this.#core.out.defer(RECORD_HEADS[level], this.#afterTime, facts, members, at);
  }

  #write(level: LogLevel, first: object | string, msg: unknown): void {
    const core = this.#core;
    // The common form, fields and a message, without normalize()'s tuple.
    if (core.json && typeof msg === "string" && typeof first === "object" && !(first instanceof Error)) {
      core.out.write(`${RECORD_HEADS[level]}${epochMsText()}${this.#afterTime}${jsonMembers(first)},"msg":${JSON.stringify(msg)}}\n`);
      return;
    }
    const [fields, message] = normalize(first, msg);
    if (core.json) {
      core.out.write(`${RECORD_HEADS[level]}${epochMsText()}${this.#afterTime}${fields === null ? "" : jsonMembers(fields)}`
        + `,"msg":${JSON.stringify(message)}}\n`);
      return;
    }
    const err = fields === null ? undefined : (fields as { err?: unknown }).err;
    const stack = err instanceof Error ? `\n${errorText(err)}` : "";
    core.out.write(`${clock()} ${TEXT_LABELS[level]} ${message}${this.#bound}${fields === null ? "" : textPairs(fields)}${stack}\n`);
  }
}

/**
 * Creates a logger of typhoon's own kind.
 *
 * @example
 * const logger = createLogger({ format: "json", level: "debug" });
 * logger.child({ component: "billing" }).info({ invoice: 7 }, "sent");
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? envLevel() ?? "info";
  const destination = options.destination ?? process.stderr;
  const format = options.format ?? envFormat() ?? (destination === process.stderr && process.stderr.isTTY ? "text" : "json");
  const flushMs = options.flushMs ?? (format === "json" ? 10 : 0);
  if (!Number.isFinite(flushMs) || flushMs < 0) throw new RangeError(`flushMs must be a number of milliseconds ≥ 0, got ${flushMs}`);
  const core: Core = {
    min: LEVELS[level],
    json: format === "json",
    out: new BatchedWriter(destination, flushMs),
    base: `"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`,
  };
  return new TyphoonLogger(core, "");
}

/** Adapts a `(level, message)` sink to a {@link Logger}: the message, plus an error's stack. */
class SinkLogger implements Logger {
  readonly #sink: LogSink;
  readonly #bindings: Record<string, unknown> | null;

  constructor(sink: LogSink, bindings: Record<string, unknown> | null = null) {
    this.#sink = sink;
    this.#bindings = bindings;
  }

  debug(fields: object | string, msg?: unknown): void { this.#write("debug", fields, msg); }
  info(fields: object | string, msg?: unknown): void { this.#write("info", fields, msg); }
  warn(fields: object | string, msg?: unknown): void { this.#write("warn", fields, msg); }
  error(fields: object | string, msg?: unknown): void { this.#write("error", fields, msg); }

  child(bindings: Record<string, unknown>): Logger {
    return new SinkLogger(this.#sink, { ...this.#bindings, ...bindings });
  }

  #write(level: LogLevel, first: object | string, msg: unknown): void {
    const [fields, message] = normalize(first, msg);
    const err = fields === null ? undefined : (fields as { err?: unknown }).err;
    this.#sink(level, err === undefined ? message : `${message}\n${errorText(err)}`);
  }
}

let defaultLogger: Logger | undefined;
let current: Logger | LogSink | undefined;
let currentLogger: Logger | undefined;

/** The logger the framework writes to now: the one given to {@link setLogger}, else the default. */
export function currentLog(): Logger {
  if (currentLogger !== undefined) return currentLogger;
  return (defaultLogger ??= createLogger());
}

/**
 * Replaces the process-wide logger (a {@link Logger}, or a `(level, message)` sink); with no
 * argument restores typhoon's default logger. Returns what was set before (`undefined` for the
 * default). Apps with their own `logger` setting write their request records there instead.
 */
export function setLogger(next?: Logger | LogSink): Logger | LogSink | undefined {
  const previous = current;
  current = next;
  currentLogger = next === undefined ? undefined : typeof next === "function" ? new SinkLogger(next) : next;
  return previous;
}

/** A logger that writes to {@link currentLog} at call time, with `bindings` added. */
class ForwardingLogger implements Logger {
  readonly #bindings: Record<string, unknown> | null;

  constructor(bindings: Record<string, unknown> | null) {
    this.#bindings = bindings;
  }

  debug(fields: object | string, msg?: unknown): void { this.#forward("debug", fields, msg); }
  info(fields: object | string, msg?: unknown): void { this.#forward("info", fields, msg); }
  warn(fields: object | string, msg?: unknown): void { this.#forward("warn", fields, msg); }
  error(fields: object | string, msg?: unknown): void { this.#forward("error", fields, msg); }

  child(bindings: Record<string, unknown>): Logger {
    return new ForwardingLogger({ ...this.#bindings, ...bindings });
  }

  #forward(level: LogLevel, first: object | string, msg: unknown): void {
    const target = currentLog();
    if (this.#bindings === null) {
      // The older `(msg, err)` form goes out in pino's: `({ err }, msg)`.
      if (typeof first === "string") {
        if (msg === undefined) target[level](first);
        else target[level]({ err: msg }, first);
      } else target[level](first, typeof msg === "string" ? msg : undefined);
      return;
    }
    const [fields, message] = normalize(first, msg);
    target[level]({ ...this.#bindings, ...fields }, message);
  }
}

/**
 * The framework's logger: every call goes to whatever {@link setLogger} set at that moment
 * (typhoon's default logger otherwise).
 */
export const log: Logger = new ForwardingLogger(null);

/** A logger that renders a record's JSON itself, for one written per request (the access record). */
export interface JsonRecordWriter {
  /**
   * Writes one record at `level`: its `level`, `time`, `pid`, `hostname` and bindings, then
   * `members(facts)`, the rest in JSON (`,"a":1,"b":"x","msg":"…"`; strings escaped, see
   * {@link jsonInner}). `members` runs when the batch is written, with the other records of the
   * batch, so `facts` must not change after the call. `at` is the record's time as
   * `performance.now()` read it (default: now).
   */
  writeRecord<T>(level: LogLevel, facts: T, members: (facts: T) => string, at?: number): void;
}

/**
 * typhoon's own JSON logger behind `logger` (itself, or {@link log} with no other logger set)
 * when it writes `level`, for records whose fields are rendered without walking an object;
 * `null` when the caller must use the logger's methods (pino, a sink, the text format).
 */
export function jsonRecordWriter(logger: Logger, level: LogLevel): JsonRecordWriter | null {
  const target = logger === log ? currentLog() : logger;
  return target instanceof TyphoonLogger && target.writesJson(level) ? target : null;
}

/**
 * Whether `logger` writes records at `level`, so a caller can skip building one: typhoon's own
 * loggers and pino (`isLevelEnabled`) say; any other logger is assumed to.
 */
export function levelEnabled(logger: Logger, level: LogLevel): boolean {
  const target = logger === log ? currentLog() : logger;
  if (target instanceof TyphoonLogger) return target.writes(level);
  const isLevelEnabled = (target as { isLevelEnabled?: unknown }).isLevelEnabled;
  return typeof isLevelEnabled === "function" ? (isLevelEnabled as (level: string) => unknown).call(target, level) !== false : true;
}

// TYPHOON_DEBUG, the older switch, still means debug.
function envLevel(): LogLevel | undefined {
  const raw = process.env["TYPHOON_LOG_LEVEL"]?.toLowerCase();
  if (raw !== undefined && raw in LEVELS) return raw as LogLevel;
  return process.env["TYPHOON_DEBUG"] ? "debug" : undefined;
}

function envFormat(): "json" | "text" | undefined {
  const raw = process.env["TYPHOON_LOG_FORMAT"]?.toLowerCase();
  return raw === "json" || raw === "text" ? raw : undefined;
}
