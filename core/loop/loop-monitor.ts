/**
 * Event-loop health for this thread: the current loop delay (read on every request when
 * overload shedding is on), delay percentiles and utilization for `IOLoop.stats()`, and the one
 * warning logged when a handler's synchronous code blocks the loop.
 *
 * The delay is measured by a sampling timer that records its own lateness. A timer cannot fire
 * *during* a block, so the reading also counts how overdue the next sample is: a request handled
 * right after a 300 ms block (in the same poll phase, before any timer runs) already sees ~300 ms.
 * Both are sampled measures: a block reads as its length less up to one sampling period (50 ms),
 * and the reading falls back one period after the loop is free again, so shedding recovers alone.
 */
import { createHistogram, performance, type EventLoopUtilization, type RecordableHistogram } from "node:perf_hooks";
import { ErrorCode, TyphoonError } from "../errors.ts";

/** Event-loop delay percentiles (ms) and utilization (0..1) over the monitor's current window. */
export interface LoopStats {
  delay: { p50: number; p90: number; p99: number; max: number; mean: number };
  utilization: number;
}

/** What the request path and `IOLoop.stats()` read from the per-thread monitor. */
export interface LoopMonitor {
  /**
   * Current event-loop delay in ms: the lateness of the last sample, or how overdue the next
   * sample is if that is larger. Cheap enough to read on every request (one clock read).
   */
  readonly delay: number;
  /** Delay percentiles and utilization since the monitor started or since {@link LoopMonitor.reset}. */
  stats(): LoopStats;
  /** Starts a new statistics window (does not affect {@link LoopMonitor.delay}). */
  reset(): void;
}

/** Options of an {@link EventLoopMonitor}. */
export interface EventLoopMonitorOptions {
  /**
   * Sampling period in ms (default 50). Smaller reacts faster after a block ends and wakes the
   * loop more often: on this project's shared 2-core VM an idle wake-up cost ~0.1 ms of CPU, so
   * 20 ms sampling used 5.5 ms of CPU per second against 2 ms at 50 ms.
   */
  interval?: number;
  /**
   * Pause the sampler while nobody reads {@link LoopMonitor.delay} (default false; true for the
   * shared monitor): an idle server then wakes up for nothing. The first read resumes it. Once
   * {@link LoopMonitor.stats} is called the monitor samples continuously, for honest percentiles.
   */
  pauseWhenUnread?: boolean;
}

/** Samples are recorded in microseconds: the histogram takes integers >= 1. */
const US_PER_MS = 1000;

/**
 * A loop-delay sampler. Most code wants the shared one from {@link loopMonitor}; a separate
 * instance is for tests or a different sampling period. Its timer is unref'd: it never keeps the
 * process alive.
 *
 * @example
 * const monitor = new EventLoopMonitor({ interval: 10 }).start();
 * // ... later
 * console.log(monitor.delay, monitor.stats().delay.p99);
 * monitor.stop();
 */
export class EventLoopMonitor implements LoopMonitor {
  readonly interval: number;
  readonly #pauseWhenUnread: boolean;
  #timer: NodeJS.Timeout | undefined;
  #paused = false;
  #read = false;
  #continuous = false;
  #lastTick = 0;
  #lastLateness = 0;
  #histogram: RecordableHistogram = createHistogram();
  #elu: EventLoopUtilization = performance.eventLoopUtilization();

  constructor({ interval = 50, pauseWhenUnread = false }: EventLoopMonitorOptions = {}) {
    if (!(interval >= 1 && Number.isFinite(interval))) {
      throw new TyphoonError(ErrorCode.TIMER_ARGUMENT, `EventLoopMonitor interval must be >= 1 ms, got ${interval}`);
    }
    this.interval = interval;
    this.#pauseWhenUnread = pauseWhenUnread;
  }

  /** Starts sampling (idempotent); returns `this`. */
  start(): this {
    if (this.#timer !== undefined) return this;
    this.#paused = false;
    this.#lastTick = performance.now();
    this.#lastLateness = 0;
    this.#timer = setInterval(() => this.#sample(), this.interval);
    this.#timer.unref();
    return this;
  }

  /** Stops sampling; {@link delay} reads 0 until started again. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#paused = false;
    this.#lastLateness = 0;
  }

  /** Whether the sampling timer is running (not stopped, not paused for lack of readers). */
  get running(): boolean {
    return this.#timer !== undefined;
  }

  get delay(): number {
    if (this.#timer === undefined) {
      // Paused while unread: nothing was served, so nothing waited; sample again from now. The
      // resuming read counts as a read, so a block right after it does not pause the sampler.
      if (this.#paused) {
        this.start();
        this.#read = true;
      }
      return 0;
    }
    this.#read = true;
    const overdue = performance.now() - this.#lastTick - this.interval;
    return overdue > this.#lastLateness ? overdue : this.#lastLateness;
  }

  stats(): LoopStats {
    this.#continuous = true;
    if (this.#paused) this.start();
    const h = this.#histogram;
    const { utilization: measured } = performance.eventLoopUtilization(this.#elu);
    // An empty window (stats() right after reset()) is 0/0.
    const utilization = Number.isFinite(measured) ? measured : 0;
    if (h.count === 0) return { delay: { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 }, utilization };
    return {
      delay: {
        p50: h.percentile(50) / US_PER_MS,
        p90: h.percentile(90) / US_PER_MS,
        p99: h.percentile(99) / US_PER_MS,
        max: h.max / US_PER_MS,
        mean: h.mean / US_PER_MS,
      },
      utilization,
    };
  }

  reset(): void {
    this.#histogram.reset();
    this.#elu = performance.eventLoopUtilization();
  }

  #sample(): void {
    const now = performance.now();
    // Node's timer clock is whole milliseconds, so a punctual tick can read up to ~1 ms early.
    const lateness = Math.max(0, now - this.#lastTick - this.interval);
    this.#lastTick = now;
    this.#lastLateness = lateness;
    this.#histogram.record(Math.max(1, Math.round(lateness * US_PER_MS)));
    if (this.#pauseWhenUnread && !this.#read && !this.#continuous) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#paused = true;
    }
    this.#read = false;
  }
}

let shared: EventLoopMonitor | undefined;

/**
 * The shared monitor of this thread, started on first call (its timer unref'd). It pauses while
 * nobody reads `delay` (an idle server is not woken 20 times a second) until `stats()` is called.
 *
 * @example
 * if (maxEventLoopDelay !== undefined && loopMonitor().delay > maxEventLoopDelay) shed503();
 */
export function loopMonitor(): LoopMonitor {
  shared ??= new EventLoopMonitor({ pauseWhenUnread: true }).start();
  return shared;
}

/** Where and how long a handler blocked the loop; `hook` is the lifecycle method (`get`, `prepare` ...). */
export interface BlockingInfo {
  method: string;
  path: string;
  handler: string;
  hook: string;
  ms: number;
}

/**
 * The blocking warning, e.g. `GET /sleep/5 blocked the event loop for 912 ms in SleepHandler.get`.
 * Control characters in the method and path are replaced so a request cannot forge log lines.
 */
export function formatBlocking(info: BlockingInfo): string {
  const method = printable(info.method);
  const path = printable(info.path);
  return `${method} ${path} blocked the event loop for ${Math.round(info.ms)} ms in ${info.handler}.${info.hook}`;
}

/**
 * Logs one blocking warning through `log` (default `console.warn`). Called by the request path
 * when a synchronous stretch of handler code ran longer than `blockingThreshold`.
 *
 * @example
 * reportBlocking({ method: "GET", path: "/sleep/5", handler: "SleepHandler", hook: "get", ms: 912 });
 * // GET /sleep/5 blocked the event loop for 912 ms in SleepHandler.get
 */
export function reportBlocking(info: BlockingInfo, log: (msg: string) => void = console.warn): void {
  log(formatBlocking(info));
}

/** Replaces control characters, so a request path cannot forge log lines. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, "?");
}
