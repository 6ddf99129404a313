// PeriodicCallback: Tornado's schedule arithmetic exactly (TestPeriodicCallbackMath, in ms), the
// class driven by a manual clock so every deadline it asks for is checked exactly, and the class
// on real timers.
import t from "tap";
import { ErrorCode } from "../../core/errors.ts";
import { IOLoop, TimeoutHandle } from "../../core/loop/ioloop.ts";
import { nextTimeout, PeriodicCallback } from "../../core/loop/periodic.ts";

/** Tornado's `simulate_calls`: the deadlines produced when each call lasts `durations[i]` ms. */
function simulateCalls(durations: number[], period = 10, jitter = 0, random?: () => number): number[] {
  const calls: number[] = [];
  let now = 1000;
  let next = 1000;
  for (const duration of durations) {
    next = nextTimeout(next, now, period, jitter, random);
    calls.push(next);
    now = next + duration;
  }
  return calls;
}

/** mulberry32: a small seeded PRNG returning [0, 1). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test("the schedule: on time, one period apart", async (t) => {
  t.same(simulateCalls([0, 0, 0, 0, 0]), [1010, 1020, 1030, 1040, 1050]);
});

t.test("the schedule: after an overrun whole missed slots are skipped", async (t) => {
  t.same(simulateCalls([9, 9, 10, 11, 20, 20, 35, 35, 0, 0, 0]), [
    1010, 1020, 1030, // on schedule
    1050, 1070, // delayed one cycle
    1100, 1130, // delayed two cycles
    1170, 1210, // delayed three cycles
    1220, 1230, // back on schedule
  ]);
});

t.test("the schedule: a clock going backwards advances by one period", async (t) => {
  t.same(simulateCalls([-2, -1, -3, -2, 0]), [1010, 1020, 1030, 1040, 1050]);
  t.same(simulateCalls([-100, 0, 0]), [1010, 1020, 1030]);
});

t.test("the schedule: jitter multiplies each period by 1 + jitter × (random − 0.5)", async (t) => {
  const randoms = [0.5, 1, 0, 0.75];
  t.same(simulateCalls([0, 0, 0, 0], 10, 0.5, () => randoms.shift() ?? Number.NaN), [1010, 1022.5, 1030, 1041.25]);
  t.same(simulateCalls([25], 10, 0.5, () => 1), [1012.5], "first deadline uses the jittered period");
  t.same(simulateCalls([0, 30, 0], 10, 0.5, () => 1), [1012.5, 1025, 1062.5], "skipped slots use the jittered period too");
});

t.test("the schedule: jitter with a seeded random stays in bounds and is reproducible", async (t) => {
  const durations = Array.from({ length: 200 }, () => 0);
  const a = simulateCalls(durations, 10, 0.4, seeded(42));
  t.same(simulateCalls(durations, 10, 0.4, seeded(42)), a, "same seed, same schedule");
  t.not(simulateCalls(durations, 10, 0.4, seeded(7)).join(), a.join(), "another seed, another schedule");
  const gaps = a.map((deadline, i) => deadline - (i === 0 ? 1000 : a[i - 1]!));
  t.ok(gaps.every((gap) => gap >= 8 && gap < 12), "every period within 10 × (1 ± 0.2)");
  const mean = gaps.reduce((sum, gap) => sum + gap, 0) / gaps.length;
  t.ok(Math.abs(mean - 10) < 0.2, `mean period ${mean.toFixed(3)} is 10`);
  t.ok(new Set(gaps.map((g) => g.toFixed(6))).size > 100, "the periods actually vary");
});

t.test("the schedule: without jitter random is never consulted", async (t) => {
  const random = (): number => { throw new Error("random called"); };
  t.same(simulateCalls([15, 0], 10, 0, random), [1010, 1030]);
});

/**
 * An IOLoop whose clock is moved by hand: `callAt` records deadlines instead of arming timers,
 * `fireNext()` jumps the clock to the earliest pending deadline and runs it.
 */
class ManualLoop extends IOLoop {
  now = 1000;
  logged: string[] = [];
  #pending: { when: number; run: () => void; handle: TimeoutHandle }[] = [];

  constructor() {
    super({ logError: (message) => this.logged.push(message) });
  }

  override time(): number {
    return this.now;
  }

  override callAt<A extends unknown[]>(when: number, fn: (...args: A) => unknown, ...args: A): TimeoutHandle {
    const handle = new TimeoutHandle(Infinity, () => {}).unref();
    this.#pending.push({ when, run: () => void fn(...args), handle });
    return handle;
  }

  /** Deadlines asked for and neither run nor removed. */
  pendingDeadlines(): number[] {
    return this.#pending.filter((p) => p.handle.pending).map((p) => p.when);
  }

  /** Runs the earliest pending call at its deadline; resolves after its promise chain settles. */
  async fireNext(): Promise<number> {
    const live = this.#pending.filter((p) => p.handle.pending).sort((a, b) => a.when - b.when);
    const first = live[0];
    if (!first) throw new Error("nothing pending");
    this.#pending = this.#pending.filter((p) => p !== first && p.handle.pending);
    first.handle.cancel();
    this.now = Math.max(this.now, first.when);
    first.run();
    await new Promise((resolve) => setImmediate(resolve));
    return first.when;
  }
}

t.test("the class asks for Tornado's deadlines: first one period after start, overruns skipped", async (t) => {
  const loop = new ManualLoop();
  const durations = [9, 9, 10, 11, 20, 20, 35, 35, 0, 0, 0];
  let call = 0;
  const pc = new PeriodicCallback(() => { loop.now += durations[call++] ?? 0; }, 10, 0, { ioloop: loop });
  pc.start();
  t.same(loop.pendingDeadlines(), [1010], "first call one period after start()");
  loop.now = 1003;
  pc.start();
  t.same(loop.pendingDeadlines(), [1010], "start() while running changes nothing");
  loop.now = 1000;
  const fired: number[] = [];
  for (let i = 0; i < durations.length; i++) fired.push(await loop.fireNext());
  t.same(fired, [1010, 1020, 1030, 1050, 1070, 1100, 1130, 1170, 1210, 1220, 1230]);
  pc.stop();
  t.same(loop.pendingDeadlines(), [], "stop() removes the pending call");
});

t.test("the class applies jitter from its random source", async (t) => {
  const loop = new ManualLoop();
  const randoms = [0.5, 1, 0, 0.75];
  const pc = new PeriodicCallback(() => {}, 10, 0.5, { ioloop: loop, random: () => randoms.shift() ?? 0.5 });
  pc.start();
  const fired: number[] = [];
  for (let i = 0; i < 4; i++) fired.push(await loop.fireNext());
  t.same(fired, [1010, 1022.5, 1030, 1041.25]);
  pc.stop();
});

t.test("an async callback is awaited: the next call is scheduled only once it settles", async (t) => {
  const loop = new ManualLoop();
  let release: (() => void) | undefined;
  let calls = 0;
  const pc = new PeriodicCallback(() => {
    calls++;
    return new Promise<void>((resolve) => { release = resolve; });
  }, 10, 0, { ioloop: loop });
  pc.start();
  await loop.fireNext();
  t.equal(calls, 1);
  t.same(loop.pendingDeadlines(), [], "nothing scheduled while the call is in flight");
  loop.now = 1045;
  release?.();
  await new Promise((resolve) => setImmediate(resolve));
  t.same(loop.pendingDeadlines(), [1050], "after a 35 ms call the slots 1020..1040 are skipped");
  pc.stop();
});

t.test("stop() then start() during an awaited call leaves one schedule and no overlap", async (t) => {
  const loop = new ManualLoop();
  const releases: (() => void)[] = [];
  let calls = 0;
  const pc = new PeriodicCallback(() => {
    calls++;
    return new Promise<void>((resolve) => releases.push(resolve));
  }, 10, 0, { ioloop: loop });
  pc.start();
  await loop.fireNext(); // call 1 in flight from t=1010
  pc.stop();
  t.notOk(pc.isRunning());
  pc.start(); // at 1010: next deadline 1020
  t.ok(pc.isRunning());
  t.same(loop.pendingDeadlines(), [1020]);
  await loop.fireNext(); // 1020: call 1 still in flight, so this slot is skipped
  t.equal(calls, 1, "no second call while the first is still running");
  t.same(loop.pendingDeadlines(), [1030]);
  releases[0]?.();
  await new Promise((resolve) => setImmediate(resolve));
  t.same(loop.pendingDeadlines(), [1030], "the old call finishing adds no second schedule");
  await loop.fireNext();
  t.equal(calls, 2);
  pc.stop();
  releases[1]?.();
  await new Promise((resolve) => setImmediate(resolve));
  t.same(loop.pendingDeadlines(), [], "a call finishing after stop() schedules nothing");
});

t.test("an error thrown by the callback is logged with its stack and the schedule goes on", async (t) => {
  const loop = new ManualLoop();
  let calls = 0;
  const pc = new PeriodicCallback(function flaky() {
    calls++;
    if (calls === 1) throw new Error("tick failed");
    if (calls === 2) return Promise.reject(new Error("async tick failed"));
    return undefined;
  }, 10, 0, { ioloop: loop });
  pc.start();
  for (let i = 0; i < 3; i++) await loop.fireNext();
  t.equal(calls, 3);
  t.equal(loop.logged.length, 2);
  t.match(loop.logged[0], /^Exception in callback flaky: Error: tick failed\n\s+at /);
  t.match(loop.logged[1], /Exception in callback flaky: Error: async tick failed\n\s+at /);
  t.same(loop.pendingDeadlines(), [1040]);
  pc.stop();
});

t.test("invalid callbackTime or jitter throws E_TIMER_ARGUMENT", async (t) => {
  for (const bad of [0, -5, Number.NaN, Infinity]) {
    t.throws(() => new PeriodicCallback(() => {}, bad), { code: ErrorCode.TIMER_ARGUMENT }, `callbackTime ${bad}`);
  }
  for (const bad of [-0.1, 2, Number.NaN]) {
    t.throws(() => new PeriodicCallback(() => {}, 10, bad), { code: ErrorCode.TIMER_ARGUMENT }, `jitter ${bad}`);
  }
});

t.test("on real timers: first call after one period, repeats, and stops for good", async (t) => {
  const loop = IOLoop.current();
  const times: number[] = [];
  const started = loop.time();
  const pc = new PeriodicCallback(() => {
    times.push(loop.time());
    if (times.length === 3) pc.stop();
  }, 20);
  t.teardown(() => pc.stop());
  t.notOk(pc.isRunning());
  pc.start();
  t.ok(pc.isRunning());
  await waitFor(() => times.length === 3);
  t.notOk(pc.isRunning());
  t.ok(times[0]! - started >= 20, `first call ${(times[0]! - started).toFixed(2)} ms after start()`);
  t.ok(times[1]! - started >= 40 && times[2]! - started >= 60, "calls land on the period's multiples, never earlier");
  let sentinel = false;
  loop.callLater(100, () => { sentinel = true; });
  await waitFor(() => sentinel);
  t.equal(times.length, 3, "no call after stop()");
});

t.test("on real timers: an async callback longer than the period never overlaps itself", async (t) => {
  const loop = IOLoop.current();
  let active = 0;
  let maxActive = 0;
  const spans: [number, number][] = [];
  const pc = new PeriodicCallback(async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    const begin = loop.time();
    await new Promise((resolve) => setTimeout(resolve, 35));
    spans.push([begin, loop.time()]);
    active--;
  }, 10);
  t.teardown(() => pc.stop());
  pc.start();
  await waitFor(() => spans.length >= 4);
  pc.stop();
  t.equal(maxActive, 1);
  for (let i = 1; i < spans.length; i++) {
    t.ok(spans[i]![0] >= spans[i - 1]![1], `call ${i + 1} starts after call ${i} ended`);
  }
});

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
