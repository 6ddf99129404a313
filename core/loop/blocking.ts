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
 *
 * The tick cannot be relied on to come before anyone looks: after a block it fired 70 to 150 ms
 * after the loop was free again here (Node 20 and 24 alike), and on Node 24 the client often had
 * its response, and read the log, before that. So the moment the last request in flight finishes
 * (when the clock is read anyway) also checks how overdue the tick is: overdue by more than the
 * threshold means the loop was held since the last tick, and the block is reported then, to the
 * requests just served; the tick, when it comes, does not repeat it.
 */
import { log } from "../log.ts";
import { formatBlocking, printable } from "./loop-monitor.ts";

/** A request being served, as the watch reports it. `hook` is the last lifecycle hook entered. */
export interface InFlight {
  readonly method: string;
  readonly path: string;
  readonly handler: string;
  hook: string;
  /** The request's id, carried by the report. */
  readonly reqId?: string;
  /** Where the watch keeps it while it is in flight (set by `enter()`; -1 or absent: not in flight). */
  slot?: number;
}

/** How many finished requests are remembered for attribution (a ring). */
const RECENT = 16;

/** The watchdog of one application. */
export class BlockingWatch {
  readonly threshold: number;
  readonly #interval: number;
  readonly #log: (message: string, fields?: { reqId: string }) => void;
  // The requests in flight, each at its `slot`, and the slots free for reuse. Not a Set: a Set
  // hashes each new entry by identity, a runtime call that cost 4–5% of a hello-world request.
  readonly #slots: (InFlight | undefined)[] = [];
  readonly #free: number[] = [];
  #inFlightCount = 0;
  // Requests that finished since the last tick: a block seen at this tick may have been theirs.
  // A ring filled without allocating or reading the clock, the price of watching being per request.
  readonly #recent: (InFlight | undefined)[] = new Array<InFlight | undefined>(RECENT).fill(undefined);
  #recentCount = 0;
  /** When the last request in flight finished: a block that began after it was not a request's. */
  #idleSince = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastTick = 0;
  #reportedUntil = 0;

  constructor(threshold: number, logLine: (message: string, fields?: { reqId: string }) => void = (message, fields) => {
    if (fields === undefined) log.warn(message);
    else log.warn(fields, message);
  }) {
    this.threshold = threshold;
    // Ticks well inside the threshold, so a block is seen within one threshold of its end.
    this.#interval = Math.max(10, Math.min(50, threshold / 2));
    this.#log = logLine;
  }

  /** A request starts being served. */
  enter(entry: InFlight): void {
    if (entry.slot !== undefined && entry.slot >= 0 && this.#slots[entry.slot] === entry) return;
    const slot = this.#free.pop() ?? this.#slots.length;
    this.#slots[slot] = entry;
    entry.slot = slot;
    this.#inFlightCount++;
    if (this.#timer === undefined) {
      this.#lastTick = performance.now();
      this.#timer = setInterval(() => this.#tick(), this.#interval);
      this.#timer.unref();
    }
  }

  /** A request is done; it stays a candidate for a block seen at the next tick. */
  leave(entry: InFlight): void {
    const slot = entry.slot;
    if (slot === undefined || slot < 0 || this.#slots[slot] !== entry) return;
    this.#slots[slot] = undefined;
    entry.slot = -1;
    this.#free.push(slot);
    this.#inFlightCount--;
    this.#recent[this.#recentCount++ % RECENT] = entry;
    // One clock read when the server goes idle, not per request under load.
    if (this.#inFlightCount === 0) {
      const now = performance.now();
      this.#idleSince = now;
      // Reported here: the stretch is done with, the next tick measures from now.
      if (this.#timer !== undefined && this.#check(now)) {
        this.#lastTick = now;
        this.#recentCount = 0;
      }
    }
  }

  /** A timed hook reported a block ending now: the watchdog must not report it twice. */
  noteReported(end: number = performance.now()): void {
    this.#reportedUntil = end;
  }

  #tick(): void {
    const now = performance.now();
    this.#check(now);
    this.#lastTick = now;
    this.#recentCount = 0;
    if (this.#inFlightCount === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /**
   * Reports a block if the tick is overdue by more than the threshold at `now` and no timed hook
   * (nor an earlier check) reported that stretch; says whether it did.
   */
  #check(now: number): boolean {
    const due = this.#lastTick + this.#interval;
    const late = now - due;
    // Blocked, not reported yet, and not after every request had already finished (then it was
    // other code: another app, a timer, a callback).
    const ours = this.#inFlightCount > 0 || this.#idleSince >= due;
    if (!(late > this.threshold && this.#reportedUntil < due && ours)) return false;
    this.#report(late);
    this.#reportedUntil = now;
    return true;
  }

  #report(ms: number): void {
    const candidates = this.#slots.filter((entry): entry is InFlight => entry !== undefined);
    for (let i = 0; i < Math.min(this.#recentCount, RECENT); i++) candidates.push(this.#recent[i]!);
    if (candidates.length === 0) return;
    if (candidates.length === 1) {
      const only = candidates[0]!;
      const message = `${formatBlocking({ ...only, ms })} (after an await)`;
      if (only.reqId === undefined) this.#log(message);
      else this.#log(message, { reqId: only.reqId });
      return;
    }
    const list = candidates.slice(0, 8).map((c) => `${printable(c.method)} ${printable(c.path)} (${c.handler}.${c.hook})`).join(", ");
    this.#log(`The event loop was blocked for ${Math.round(ms)} ms after an await, while serving ${candidates.length} requests: ${list}`);
  }
}
