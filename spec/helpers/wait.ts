/**
 * Bounded waits for specs: poll a condition until it holds or a generous bound expires, so a spec
 * waits for an event (a log line, a counter, a state) instead of sleeping a fixed time. The bound
 * only matters when the behaviour is broken; on a loaded machine the wait simply lasts longer.
 */

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** Give up after this many ms (default 10 000). */
  readonly timeout?: number;
  /** Poll this often, in ms (default 10). */
  readonly interval?: number;
  /** What is awaited, for the error message. */
  readonly what?: string;
}

/**
 * Resolves once `condition()` is true; rejects with an error naming `what` after `timeout` ms.
 *
 * @example
 * await waitFor(() => lines.length > 0, { what: "a log line" });
 */
export async function waitFor(condition: () => boolean, options: WaitOptions = {}): Promise<void> {
  const { timeout = 10_000, interval = 10, what = "the condition" } = options;
  const deadline = performance.now() + timeout;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/**
 * Resolves once `sample()` has returned the same value for `stableFor` ms in a row, to that
 * value; rejects after `timeout` ms. For "it stopped moving" checks (a stream held back by
 * backpressure), where no event says that nothing more will happen.
 */
export async function waitUntilStable<T>(sample: () => T, options: WaitOptions & { readonly stableFor?: number } = {}): Promise<T> {
  const { timeout = 20_000, interval = 20, stableFor = 500, what = "a stable value" } = options;
  const deadline = performance.now() + timeout;
  let last = sample();
  let since = performance.now();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, interval));
    const now = performance.now();
    const value = sample();
    if (value !== last) {
      last = value;
      since = now;
    } else if (now - since >= stableFor) {
      return value;
    }
    if (now > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
  }
}

/**
 * `promise`, or a rejection naming `what` after `timeout` ms: an awaited event that never comes
 * fails the test at once instead of hanging it until tap's own timeout.
 */
export async function within<T>(promise: Promise<T>, what: string, timeout = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms waiting for ${what}`)), timeout);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
