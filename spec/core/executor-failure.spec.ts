/**
 * ThreadPoolExecutor when things go wrong, on real threads: a task that exits, crashes or runs
 * out of memory; abort and timeout while queued and while running; a full queue; a module that
 * does not load; shutdown with and without waiting.
 */
import t, { type Test } from "tap";
import { AbortError, ExecutorError, TimeoutError } from "../../core/errors.ts";
import { ThreadPoolExecutor, type ThreadPoolOptions } from "../../core/executor/pool.ts";

const TASKS = new URL("../fixtures/tasks.ts", import.meta.url);

function makePool(test: Test, options: Partial<ThreadPoolOptions> = {}): ThreadPoolExecutor {
  const pool = new ThreadPoolExecutor({ module: TASKS, ...options });
  test.teardown(() => pool.shutdown({ wait: false }));
  return pool;
}

/** Resolves when `flag[0]` becomes 1 (a task says it started); bounded. */
async function started(flag: Int32Array, withinMs = 10_000): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (Atomics.load(flag, 0) === 0) {
    if (performance.now() > deadline) throw new Error("the task did not start in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Milliseconds `promise` takes to settle. */
async function settleTime(promise: Promise<unknown>): Promise<number> {
  const start = performance.now();
  await promise.catch(() => undefined);
  return performance.now() - start;
}

t.test("startTimeout: a module slower to load than it is given up on, with an error that names the option; a longer one (or 0) waits", async (t) => {
  const slow = new URL("../fixtures/tasks-slow-start.js", import.meta.url);
  const impatient = makePool(t, { module: slow, maxWorkers: 1, startTimeout: 150 });
  const error = await impatient.submit("loaded").catch((e: unknown) => e);
  t.ok(error instanceof ExecutorError, "an ExecutorError");
  t.match((error as Error).message, /did not load its task module within 150 ms \(the executor's startTimeout\)/);
  t.equal(await makePool(t, { module: slow, maxWorkers: 1, startTimeout: 5000 }).submit("loaded"), "loaded");
  t.equal(await makePool(t, { module: slow, maxWorkers: 1, startTimeout: 0 }).submit("loaded"), "loaded", "0: no limit");
  for (const bad of [-1, Number.NaN, "1000"]) {
    t.throws(() => new ThreadPoolExecutor({ module: slow, startTimeout: bad as number }), ExecutorError, `startTimeout ${String(bad)} is refused`);
  }
});

t.test("a task that calls process.exit rejects with ExecutorError and its thread is replaced", async (t) => {
  const pool = makePool(t, { maxWorkers: 1 });
  const before = await pool.submit<number>("threadId");
  const error = await pool.submit("exitThread", 3).catch((e: unknown) => e);
  t.ok(error instanceof ExecutorError, "an ExecutorError");
  t.match((error as Error).message, /exited with code 3 while running task "exitThread"/);
  const after = await pool.submit<number>("threadId");
  t.not(after, before, "a new thread serves the next call");
  t.equal(pool.stats().workers, 1);
});

t.test("an uncaught exception in a worker timer rejects the running call with ExecutorError", async (t) => {
  const pool = makePool(t, { maxWorkers: 1 });
  await t.rejects(pool.submit("throwInTimer", "boom in timer"), {
    name: "ExecutorError", message: /crashed with an uncaught Error: boom in timer while running task "throwInTimer"/,
  });
  t.equal(await pool.submit("add", 2, 2), 4, "the replacement thread works");
});

t.test("a task that runs out of memory rejects with ExecutorError and the thread is replaced", async (t) => {
  const pool = makePool(t, { maxWorkers: 1, resourceLimits: { maxOldGenerationSizeMb: 24 } });
  await t.rejects(pool.submit("exhaustMemory"), { name: "ExecutorError", message: /ran out of memory \(resourceLimits\) while running task "exhaustMemory"/ });
  t.equal(await pool.submit("add", 1, 2), 3, "the replacement thread works");
});

t.test("calls queued behind a crash still run, on the replacement thread", async (t) => {
  const pool = makePool(t, { maxWorkers: 1 });
  const crash = pool.submit("exitThread", 1);
  const next = [pool.submit("add", 1, 1), pool.submit("add", 2, 2)];
  await t.rejects(crash, ExecutorError);
  t.same(await Promise.all(next), [2, 4]);
});

t.test("abort while queued rejects at once and the task never runs", async (t) => {
  const pool = makePool(t, { maxWorkers: 1 });
  const counter = new Int32Array(new SharedArrayBuffer(4));
  let firstDone = false;
  const first = pool.submit("busy", 300).then(() => { firstDone = true; });
  const ctl = new AbortController();
  const queued = pool.submitWith({ signal: ctl.signal }, "mark", counter);
  ctl.abort(new Error("no longer needed"));
  const error = await queued.catch((e: unknown) => e);
  t.ok(error instanceof AbortError, "an AbortError");
  t.equal((error as Error).cause instanceof Error && (error as Error & { cause: Error }).cause.message, "no longer needed", "the abort reason is the cause");
  t.notOk(firstDone, "rejected before the call ahead of it finished");
  await first;
  await pool.submit("mark", counter);
  t.equal(Atomics.load(counter, 0), 1, "only the later call ran");
});

t.test("abort while running terminates the thread and rejects with AbortError", async (t) => {
  const pool = makePool(t, { maxWorkers: 1 });
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const before = await pool.submit<number>("threadId");
  const ctl = new AbortController();
  const running = pool.submitWith({ signal: ctl.signal }, "holdForever", flag);
  await started(flag);
  ctl.abort();
  const took = await settleTime(running);
  await t.rejects(running, AbortError);
  t.ok(took < 1000, `rejected ${took.toFixed(0)} ms after the abort`);
  const after = await pool.submit<number>("threadId");
  t.not(after, before, "the held thread was replaced");
});

t.test("an already aborted signal rejects without running the task", async (t) => {
  const pool = makePool(t);
  const counter = new Int32Array(new SharedArrayBuffer(4));
  await t.rejects(pool.submitWith({ signal: AbortSignal.abort() }, "mark", counter), AbortError);
  t.equal(Atomics.load(counter, 0), 0);
  t.equal(pool.stats().workers, 0, "no thread was started for it");
});

t.test("a timeout rejects with TimeoutError and stops the running task", async (t) => {
  const pool = makePool(t, { maxWorkers: 1 });
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const start = performance.now();
  await t.rejects(pool.submitWith({ timeout: 300 }, "holdForever", flag), { name: "TimeoutError", message: /timed out after 300 ms/ });
  t.ok(performance.now() - start < 10_000, `promptly (${Math.round(performance.now() - start)} ms)`);
  t.equal(await pool.submit("add", 3, 4), 7, "a fresh thread serves the next call");
});

t.test("taskTimeout applies to every call of the pool", async (t) => {
  const pool = makePool(t, { maxWorkers: 1, taskTimeout: 200 });
  await t.rejects(pool.submit("busy", 5000), TimeoutError);
  t.equal(await pool.submit("add", 1, 1), 2);
});

t.test("a full queue rejects with a clear ExecutorError", async (t) => {
  const pool = makePool(t, { maxWorkers: 1, maxQueue: 1 });
  const running = pool.submit("busy", 200);
  const waiting = pool.submit("add", 1, 2);
  await t.rejects(pool.submit("add", 3, 4), { name: "ExecutorError", message: /queue is full \(maxQueue 1\)/ });
  t.same(await Promise.all([running, waiting]), [200, 3], "the accepted calls run");
});

t.test("a task module that does not load rejects calls with ExecutorError saying so", async (t) => {
  const pool = new ThreadPoolExecutor({ module: new URL("../fixtures/tasks-missing.ts", import.meta.url) });
  t.teardown(() => pool.shutdown({ wait: false }));
  await t.rejects(pool.submit("add", 1, 2), { name: "ExecutorError", message: /failed to start/ });
});

t.test("shutdown waits for queued and running calls, then ends every thread", async (t) => {
  const pool = makePool(t, { maxWorkers: 2 });
  const calls = [pool.submit("busy", 100), pool.submit("busy", 100), pool.submit("add", 1, 1)];
  await pool.shutdown();
  t.same(await Promise.all(calls), [100, 100, 2]);
  t.equal(pool.stats().workers, 0, "no thread left");
  await t.rejects(pool.submit("add", 1, 1), { name: "ExecutorError", message: /shut down/ });
});

t.test("shutdown without waiting rejects queued and running calls", async (t) => {
  const pool = makePool(t, { maxWorkers: 1 });
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const running = pool.submit("holdForever", flag).catch((e: unknown) => e);
  const queued = pool.submit("add", 1, 1).catch((e: unknown) => e);
  await started(flag);
  await pool.shutdown({ wait: false });
  t.match(await running, { name: "ExecutorError", message: /shut down while the task was running/ });
  t.match(await queued, { name: "ExecutorError", message: /shut down before task "add" ran/ });
  t.same(pool.stats(), { workers: 0, busy: 0, queued: 0, completed: 0, failed: 2 });
});
