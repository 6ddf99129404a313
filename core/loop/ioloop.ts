/**
 * IOLoop: Tornado's IOLoop API as a thin facade over Node's own event loop. It never runs a loop
 * of its own: callbacks are `setImmediate`, timeouts are `setTimeout`, `start()` only holds a
 * ref'd handle so the process stays alive until `stop()`. One per thread: `IOLoop.current()`.
 */
import { performance } from "node:perf_hooks";
import { inspect } from "node:util";
import { ErrorCode, ExecutorError, TimeoutError, TyphoonError } from "../errors.ts";
import { log } from "../log.ts";
import { loopMonitor, type LoopStats } from "./loop-monitor.ts";

/** What `runInExecutor` needs: a `ThreadPoolExecutor`, or any object with this `submit`. */
export interface Executor {
  submit<R>(name: string, ...args: unknown[]): Promise<R>;
}

/** Options of an {@link IOLoop}. */
export interface IOLoopOptions {
  /** Where errors thrown by callbacks are logged, with their stack (default typhoon's log, see `setLogger`). */
  logError?: (message: string) => void;
}

/** Options of {@link IOLoop.runSync}. */
export interface RunSyncOptions {
  /** Reject with a `TimeoutError` (and abort the signal given to `fn`) after this many ms. */
  timeout?: number;
}

/** Node refuses longer timer delays (it would fire after 1 ms instead). */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * A pending `callAt`/`callLater` call; pass it to {@link IOLoop.removeTimeout} to cancel it.
 * Ref'd like a Node timer: it keeps the process alive until it runs or is removed.
 */
export class TimeoutHandle {
  /** The `IOLoop.time()` at or after which the callback runs. */
  readonly deadline: number;
  #timer: NodeJS.Timeout | undefined;
  #run: () => void;
  #ref = true;

  /** Internal: created by `IOLoop.callAt`. */
  constructor(deadline: number, run: () => void) {
    this.deadline = deadline;
    this.#run = run;
    this.#arm();
  }

  /** Whether the callback is still to run (not yet run, not removed). */
  get pending(): boolean {
    return this.#timer !== undefined;
  }

  /** Lets the process exit while only this timeout is pending; returns `this`. */
  unref(): this {
    this.#ref = false;
    this.#timer?.unref();
    return this;
  }

  /** Cancels the call; a no-op once it ran or was cancelled. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    const remaining = this.deadline - performance.now();
    const delay = Math.min(MAX_TIMER_DELAY, Math.max(0, Math.ceil(remaining)));
    this.#timer = setTimeout(() => this.#fire(), delay);
    if (!this.#ref) this.#timer.unref();
  }

  #fire(): void {
    // Node's timer clock is whole milliseconds: re-arm rather than run before the deadline.
    if (performance.now() < this.deadline) return this.#arm();
    this.#timer = undefined;
    this.#run();
  }
}

let current: IOLoop | undefined;

/**
 * The scheduler of this thread, with Tornado's names.
 *
 * @example
 * const loop = IOLoop.current();
 * const handle = loop.callLater(50, () => console.log("later"));
 * loop.removeTimeout(handle);
 * await loop.runSync(async () => fetchSomething(), { timeout: 1000 });
 */
export class IOLoop {
  #logError: (message: string) => void;
  #defaultExecutor: Executor | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  #stopped: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #stopRequested = false;

  /**
   * Another facade over the same Node loop; most code uses {@link IOLoop.current}. A separate
   * instance is useful to log callback errors elsewhere.
   */
  constructor({ logError = (message: string) => log.error(message) }: IOLoopOptions = {}) {
    this.#logError = logError;
  }

  /** The IOLoop of this thread (created on first call). */
  static current(): IOLoop {
    current ??= new IOLoop();
    return current;
  }

  /**
   * Resolves when {@link stop} is called, keeping the process alive meanwhile (one ref'd
   * handle, no spinning). Calling it again while running returns the same promise. If `stop()`
   * was called while not running, the next `start()` resolves at once (Tornado's rule).
   */
  start(): Promise<void> {
    if (this.#running) return this.#running;
    if (this.#stopRequested) {
      this.#stopRequested = false;
      return Promise.resolve();
    }
    this.#keepAlive = setInterval(() => {}, MAX_TIMER_DELAY);
    this.#running = new Promise<void>((resolve) => { this.#stopped = resolve; });
    return this.#running;
  }

  /** Makes the pending {@link start} resolve and releases the process. */
  stop(): void {
    if (!this.#running) {
      this.#stopRequested = true;
      return;
    }
    clearInterval(this.#keepAlive);
    const resolve = this.#stopped;
    this.#keepAlive = undefined;
    this.#stopped = undefined;
    this.#running = undefined;
    resolve?.();
  }

  /**
   * Runs `fn` (sync or async) and resolves to its result, keeping the process alive meanwhile.
   * With `timeout`, rejects with a `TimeoutError` when it elapses and aborts the signal given to
   * `fn` (the work itself cannot be interrupted; `fn` may watch the signal).
   *
   * @example
   * const body = await IOLoop.current().runSync((signal) => fetch(url, { signal }).then((r) => r.text()), { timeout: 2000 });
   */
  async runSync<T>(fn: (signal: AbortSignal) => T | Promise<T>, { timeout }: RunSyncOptions = {}): Promise<T> {
    if (timeout !== undefined && !(timeout >= 0)) {
      throw new TyphoonError(ErrorCode.TIMER_ARGUMENT, `runSync timeout must be >= 0 ms, got ${timeout}`);
    }
    const controller = new AbortController();
    const keepAlive = setInterval(() => {}, MAX_TIMER_DELAY);
    let timer: NodeJS.Timeout | undefined;
    try {
      const work = Promise.resolve().then(() => fn(controller.signal));
      if (timeout === undefined) return await work;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const error = new TimeoutError(`Operation timed out after ${timeout} ms`);
          controller.abort(error);
          reject(error);
        }, timeout);
      });
      return await Promise.race([work, timedOut]);
    } finally {
      clearInterval(keepAlive);
      clearTimeout(timer);
    }
  }

  /** Monotonic milliseconds (sub-millisecond precision); the clock of {@link callAt}. */
  time(): number {
    return performance.now();
  }

  /**
   * Runs `fn(...args)` on the next loop turn. An error it throws (or a promise it returns that
   * rejects) is logged with its stack; the loop goes on.
   */
  addCallback<A extends unknown[]>(fn: (...args: A) => unknown, ...args: A): void {
    setImmediate(() => this.#runCallback(fn, args));
  }

  /** Same as {@link addCallback} (as in Tornado 6): fire and forget, errors logged. */
  spawnCallback<A extends unknown[]>(fn: (...args: A) => unknown, ...args: A): void {
    this.addCallback(fn, ...args);
  }

  /** Runs `fn(...args)` after `delay` ms; errors are logged. */
  callLater<A extends unknown[]>(delay: number, fn: (...args: A) => unknown, ...args: A): TimeoutHandle {
    return this.callAt(this.time() + delay, fn, ...args);
  }

  /** Runs `fn(...args)` once {@link time} reaches `when` (never earlier); errors are logged. */
  callAt<A extends unknown[]>(when: number, fn: (...args: A) => unknown, ...args: A): TimeoutHandle {
    if (Number.isNaN(when)) throw new TyphoonError(ErrorCode.TIMER_ARGUMENT, "callAt deadline is NaN");
    return new TimeoutHandle(when, () => this.#runCallback(fn, args));
  }

  /** Cancels a pending call. Safe after it ran, twice, or from inside the callback itself. */
  removeTimeout(handle: TimeoutHandle): void {
    handle.cancel();
  }

  /**
   * Calls `callback(future)` on the loop once `future` settles, fulfilled or rejected
   * (`await future` inside the callback gives the value or throws).
   */
  addFuture<T>(future: Promise<T>, callback: (future: Promise<T>) => unknown): void {
    const done = (): void => this.addCallback(callback, future);
    future.then(done, done);
  }

  /**
   * Runs `task` on `executor` (`executor.submit(task, ...args)`), or on the default executor
   * when `executor` is `null`/`undefined`; rejects with an `ExecutorError` if there is none.
   *
   * @example
   * loop.setDefaultExecutor(new ThreadPoolExecutor({ module: new URL("../tasks.ts", import.meta.url) }));
   * const sum = await loop.runInExecutor<number>(null, "spin", 5);
   */
  async runInExecutor<R>(executor: Executor | null | undefined, task: string, ...args: unknown[]): Promise<R> {
    const target = executor ?? this.#defaultExecutor;
    if (!target) throw new ExecutorError("No executor given and no default set (IOLoop.setDefaultExecutor)");
    return target.submit<R>(task, ...args);
  }

  /** The executor {@link runInExecutor} uses when given `null`. */
  setDefaultExecutor(executor: Executor): void {
    this.#defaultExecutor = executor;
  }

  /**
   * Event-loop delay percentiles (ms) and utilization of this thread, since the shared monitor
   * started: on the first call, or the first request served with `maxEventLoopDelay`. (It is
   * not started before: its timer wakes the loop 20 times a second.)
   */
  stats(): LoopStats {
    return loopMonitor().stats();
  }

  /** Logs an error thrown by `callback` with its stack (Tornado's `handle_callback_exception`). */
  handleCallbackException(callback: (...args: never[]) => unknown, error: unknown): void {
    try {
      this.#logError(`Exception in callback ${callback.name || "<anonymous>"}: ${inspect(error)}`);
    } catch {
      // A failing logger must not take the loop down with it.
    }
  }

  #runCallback<A extends unknown[]>(fn: (...args: A) => unknown, args: A): void {
    try {
      const result = fn(...args);
      if (isThenable(result)) result.then(undefined, (error: unknown) => this.handleCallbackException(fn, error));
    } catch (error) {
      this.handleCallbackException(fn, error);
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}
