/**
 * PeriodicCallback: calls a function every `callbackTime` ms on Tornado's exact schedule, and the
 * pure schedule arithmetic behind it ({@link nextTimeout}), kept apart so it is tested exactly.
 */
import { ErrorCode, TyphoonError } from "../errors.ts";
import { IOLoop, type TimeoutHandle } from "./ioloop.ts";

/**
 * The next deadline after a call, Tornado's `PeriodicCallback._update_next` in milliseconds.
 *
 * - The period is `period × (1 + jitter × (random() − 0.5))`.
 * - If the deadline has passed (`next <= now`), whole missed slots are skipped:
 *   `next + (floor((now − next) / period) + 1) × period`, so an overrun never causes calls back
 *   to back and the schedule stays on multiples of the period.
 * - Otherwise the clock went backwards (or a timer fired early): advance by one period, so the
 *   same deadline is never computed twice.
 *
 * @example
 * nextTimeout(1000, 1000, 10); // 1010
 * nextTimeout(1030, 1041, 10); // 1050: the slot at 1040 is skipped
 */
export function nextTimeout(next: number, now: number, period: number, jitter = 0, random: () => number = Math.random): number {
  const step = jitter ? period * (1 + jitter * (random() - 0.5)) : period;
  if (next <= now) return next + (Math.floor((now - next) / step) + 1) * step;
  return next + step;
}

/** Options of a {@link PeriodicCallback} beyond Tornado's three arguments. */
export interface PeriodicCallbackOptions {
  /** The loop to schedule on and log errors through (default `IOLoop.current()` at `start()`). */
  ioloop?: IOLoop;
  /** Source of randomness for the jitter, returning [0, 1) (default `Math.random`). */
  random?: () => number;
}

/**
 * Calls `fn` every `callbackTime` ms: the first call one period after {@link start}; an async
 * `fn` is awaited and never overlaps itself; after an overrun the missed slots are skipped; with
 * `jitter` (0 ≤ jitter < 2) each period is multiplied by `1 + jitter × (random − 0.5)`. An error
 * thrown by `fn` is logged with its stack and the schedule goes on.
 *
 * @example
 * const heartbeat = new PeriodicCallback(async () => { await ping(); }, 1000, 0.1);
 * heartbeat.start();
 * // ... later
 * heartbeat.stop();
 */
export class PeriodicCallback {
  readonly callbackTime: number;
  readonly jitter: number;
  #fn: () => unknown;
  #options: PeriodicCallbackOptions;
  #ioloop: IOLoop | undefined;
  #running = false;
  #next = 0;
  #handle: TimeoutHandle | undefined;
  #inFlight = false;
  // Bumped by every start(): a call still in flight from an earlier start() must not reschedule.
  #generation = 0;

  constructor(fn: () => unknown, callbackTime: number, jitter = 0, options: PeriodicCallbackOptions = {}) {
    if (!(callbackTime > 0 && Number.isFinite(callbackTime))) {
      throw new TyphoonError(ErrorCode.TIMER_ARGUMENT, `PeriodicCallback must have a positive callbackTime, got ${callbackTime}`);
    }
    if (!(jitter >= 0 && jitter < 2)) {
      throw new TyphoonError(ErrorCode.TIMER_ARGUMENT, `PeriodicCallback jitter must be in [0, 2), got ${jitter}`);
    }
    this.#fn = fn;
    this.callbackTime = callbackTime;
    this.jitter = jitter;
    this.#options = options;
  }

  /** Starts calling; the first call is one period from now. A no-op while running. */
  start(): void {
    if (this.#running) return;
    this.#ioloop = this.#options.ioloop ?? IOLoop.current();
    this.#running = true;
    this.#generation++;
    this.#next = this.#ioloop.time();
    this.#scheduleNext(this.#ioloop);
  }

  /** Stops calling; a call in progress finishes but is not followed by another. */
  stop(): void {
    this.#running = false;
    this.#handle?.cancel();
    this.#handle = undefined;
  }

  /** Whether {@link start} was called and {@link stop} not since. */
  isRunning(): boolean {
    return this.#running;
  }

  #scheduleNext(loop: IOLoop): void {
    this.#next = nextTimeout(this.#next, loop.time(), this.callbackTime, this.jitter, this.#options.random);
    const generation = this.#generation;
    this.#handle = loop.callAt(this.#next, () => this.#run(loop, generation));
  }

  async #run(loop: IOLoop, generation: number): Promise<void> {
    if (!this.#running || generation !== this.#generation) return;
    // Only possible after stop() then start() while the previous call was still awaited.
    if (this.#inFlight) return this.#scheduleNext(loop);
    this.#inFlight = true;
    try {
      await this.#fn();
    } catch (error) {
      loop.handleCallbackException(this.#fn, error);
    } finally {
      this.#inFlight = false;
      if (this.#running && generation === this.#generation) this.#scheduleNext(loop);
    }
  }
}
