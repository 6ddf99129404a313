/**
 * typhoon's log: one place where the framework writes warnings and errors, so that an app (or a
 * spec) can route them elsewhere with {@link setLogger}. Tornado's `tornado.access`,
 * `tornado.application` and `tornado.general` loggers, folded into one sink with levels.
 */

/** Severity of a log line. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Where log lines go. */
export type LogSink = (level: LogLevel, message: string) => void;

const consoleSink: LogSink = (level, message) => {
  if (level === "error") console.error(message);
  else if (level === "warn") console.warn(message);
  else if (process.env["TYPHOON_DEBUG"]) console.log(message);
};

let sink: LogSink = consoleSink;

/** Replaces the log sink; with no argument restores the console. Returns the previous sink. */
export function setLogger(next?: LogSink): LogSink {
  const previous = sink;
  sink = next ?? consoleSink;
  return previous;
}

/** The framework's logger. */
export const log = {
  debug(message: string): void { sink("debug", message); },
  info(message: string): void { sink("info", message); },
  warn(message: string): void { sink("warn", message); },
  error(message: string, err?: unknown): void {
    sink("error", err === undefined ? message : `${message}\n${errorText(err)}`);
  },
};

/** An error's stack (or its string form for non-errors), for the log. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}
