/**
 * Blocking detection (`blockingThreshold`) for the stretches of handler code that run after an
 * `await`, which the handler's own timing cannot see: it times only the synchronous part of each
 * lifecycle hook, up to its first `await`.
 *
 * While requests are in flight, a watchdog timer measures how late it fires. A tick late by more
 * than the threshold means the loop was held; if no timed hook already reported that stretch, the
 * block is attributed to the requests that were in flight during it — named exactly when there
 * was one, listed as candidates when there were several. No request in flight, no timer: an idle
 * server is never woken.
 */
import { log } from "../log.ts";
import { formatBlocking, printable } from "./loop-monitor.ts";

/** A request being served, as the watch reports it. `hook` is the last lifecycle hook entered. */
export interface InFlight {
  readonly method: string;
  readonly path: string;
  readonly handler: string;
  hook: string;
}

/** How many finished requests are remembered for attribution (a ring). */
const RECENT = 16;

/** The watchdog of one application. */
export class BlockingWatch {
  readonly threshold: number;
  readonly #interval: number;
  readonly #log: (message: string) => void;
  readonly #inFlight = new Set<InFlight>();
  // Requests that finished since the last tick: a block seen at this tick may have been theirs.
  // A ring filled without allocating or reading the clock, the price of watching being per request.
  readonly #recent: (InFlight | undefined)[] = new Array<InFlight | undefined>(RECENT).fill(undefined);
  #recentCount = 0;
  /** When the last request in flight finished: a block that began after it was not a request's. */
  #idleSince = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastTick = 0;
  #reportedUntil = 0;

  constructor(threshold: number, logLine: (message: string) => void = (message) => log.warn(message)) {
    this.threshold = threshold;
    // Ticks well inside the threshold, so a block is seen within one threshold of its end.
    this.#interval = Math.max(10, Math.min(50, threshold / 2));
    this.#log = logLine;
  }

  /** A request starts being served. */
  enter(entry: InFlight): void {
    this.#inFlight.add(entry);
    if (this.#timer === undefined) {
      this.#lastTick = performance.now();
      this.#timer = setInterval(() => this.#tick(), this.#interval);
      this.#timer.unref();
    }
  }

  /** A request is done; it stays a candidate for a block seen at the next tick. */
  leave(entry: InFlight): void {
    if (!this.#inFlight.delete(entry)) return;
    this.#recent[this.#recentCount++ % RECENT] = entry;
    // One clock read when the server goes idle, not per request under load.
    if (this.#inFlight.size === 0) this.#idleSince = performance.now();
  }

  /** A timed hook reported a block ending now: the watchdog must not report it twice. */
  noteReported(end: number = performance.now()): void {
    this.#reportedUntil = end;
  }

  #tick(): void {
    const now = performance.now();
    const due = this.#lastTick + this.#interval;
    const late = now - due;
    this.#lastTick = now;
    // Blocked, not reported by a timed hook, and not after every request had already finished
    // (then it was other code: another app, a timer, a callback).
    const ours = this.#inFlight.size > 0 || this.#idleSince >= due;
    if (late > this.threshold && this.#reportedUntil < due && ours) this.#report(late);
    this.#recentCount = 0;
    if (this.#inFlight.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #report(ms: number): void {
    const candidates = [...this.#inFlight];
    for (let i = 0; i < Math.min(this.#recentCount, RECENT); i++) candidates.push(this.#recent[i]!);
    if (candidates.length === 0) return;
    if (candidates.length === 1) {
      const only = candidates[0]!;
      this.#log(`${formatBlocking({ ...only, ms })} (after an await)`);
      return;
    }
    const list = candidates.slice(0, 8).map((c) => `${printable(c.method)} ${printable(c.path)} (${c.handler}.${c.hook})`).join(", ");
    this.#log(`The event loop was blocked for ${Math.round(ms)} ms after an await, while serving ${candidates.length} requests: ${list}`);
  }
}
