/**
 * How a task's failure crosses the thread boundary, and how a dead thread is explained.
 *
 * Structured clone keeps an error's message and stack but turns every custom class into a plain
 * `Error` and drops its name; a task's `ValidationError` would arrive as `Error`. So the worker
 * sends a description (name, message, stack, own properties) and the caller's side rebuilds it.
 */
import { ExecutorError } from "../errors.ts";

/** What the worker sends for a thrown value. */
export interface ErrorDescription {
  error?: { name: string; message: string; stack: string | undefined; props: Record<string, unknown> };
  thrown?: unknown;
}

/** Describes a thrown value for the trip to the main thread; `withProps: false` drops extras. */
export function describeError(thrown: unknown, withProps = true): ErrorDescription {
  if (!(thrown instanceof Error)) return withProps ? { thrown } : { thrown: String(thrown) };
  const props: Record<string, unknown> = {};
  if (withProps) {
    for (const [key, value] of Object.entries(thrown)) props[key] = value;
    if ("cause" in thrown && thrown.cause !== undefined) props["cause"] = thrown.cause;
  }
  return { error: { name: thrown.name, message: thrown.message, stack: thrown.stack, props } };
}

const BUILTIN_ERRORS: Record<string, ErrorConstructor> = {
  Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
};

/** Rebuilds the error a task threw from its {@link describeError description}. */
export function reviveError(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  const described = value as ErrorDescription;
  if (described.error === undefined) return described.thrown;
  const { name, message, stack, props } = described.error;
  const error = new (BUILTIN_ERRORS[name] ?? Error)(message);
  Object.defineProperty(error, "name", { value: name, configurable: true, writable: true, enumerable: false });
  if (stack !== undefined) error.stack = stack;
  for (const [key, prop] of Object.entries(props)) {
    if (key === "cause") Object.defineProperty(error, "cause", { value: prop, configurable: true, writable: true });
    else Object.defineProperty(error, key, { value: prop, configurable: true, writable: true, enumerable: true });
  }
  return error;
}

/** The `ExecutorError` for a thread that died, saying how and during which task. */
export function deathError(how: { code: number; crash: Error | null; killed: string | null; started: boolean },
  task: string | undefined): ExecutorError {
  const during = task === undefined ? "while idle" : `while running task "${task}"`;
  if (how.killed !== null) return new ExecutorError(how.killed);
  const crash = how.crash;
  if (!how.started) {
    return new ExecutorError(`Worker thread failed to start: ${crash ? `${crash.name}: ${crash.message}` : `exit code ${how.code}`}`,
      crash ? { cause: crash } : undefined);
  }
  if (crash !== null && "code" in crash && crash.code === "ERR_WORKER_OUT_OF_MEMORY") {
    return new ExecutorError(`Worker thread ran out of memory (resourceLimits) ${during}`, { cause: crash });
  }
  if (crash !== null) {
    return new ExecutorError(`Worker thread crashed with an uncaught ${crash.name}: ${crash.message} ${during}`, { cause: crash });
  }
  return new ExecutorError(`Worker thread exited with code ${how.code} ${during}`);
}
