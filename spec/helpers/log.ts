/**
 * Captures typhoon's log lines for the rest of a test, so a spec can assert what was logged
 * (and that nothing reached the client). The previous sink is restored in `t.teardown`.
 */
import type { Test } from "tap";
import { setLogger, type LogLevel } from "../../core/log.ts";

/** One captured log line. */
export interface LogLine {
  readonly level: LogLevel;
  readonly message: string;
}

/**
 * Routes the framework's log into an array until the test ends.
 *
 * @example
 * const lines = captureLog(t);
 * await app.inject({ url: "/boom" });
 * t.match(lines.map((l) => l.message).join("\n"), /Uncaught exception/);
 */
export function captureLog(t: Test): LogLine[] {
  const lines: LogLine[] = [];
  const previous = setLogger((level, message) => { lines.push({ level, message }); });
  t.teardown(() => { setLogger(previous); });
  return lines;
}

/** All captured messages joined by newlines, for `t.match`. */
export function logText(lines: readonly LogLine[]): string {
  return lines.map((l) => `${l.level}: ${l.message}`).join("\n");
}
