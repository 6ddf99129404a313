// IOLoop: every method against Node's real loop and real timers, and the process-level promises
// (start() keeps a process alive without spinning; a throwing callback never kills it) in real
// child processes.
import t from "tap";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ExecutorError, TimeoutError, ErrorCode } from "../../core/errors.ts";
import { IOLoop, type Executor } from "../../core/loop/ioloop.ts";
import { setLogger } from "../../core/log.ts";
import { ThreadPoolExecutor } from "../../core/executor/pool.ts";
import { spin } from "../../scripts/tasks.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const ioloopUrl = new URL("../../core/loop/ioloop.ts", import.meta.url).href;

/** An IOLoop whose logged errors are collected. */
function capturingLoop(): { loop: IOLoop; logged: string[] } {
  const logged: string[] = [];
  return { loop: new IOLoop({ logError: (message) => logged.push(message) }), logged };
}

/** Resolves once `cond()` holds, rejects after `ms` (a bound, not an assertion). */
async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Runs an ESM snippet in a child `node --import tsx`, with `IOLoop` already imported. */
function runChild(body: string, timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const code = `const { IOLoop } = await import(${JSON.stringify(ioloopUrl)});\n${body}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: root });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on("data", (chunk: Buffer) => { stderr += chunk.toString(); });
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`child timed out; stderr: ${stderr}`)); }, timeoutMs);
    child.on("close", (exitCode) => { clearTimeout(timer); resolve({ code: exitCode, stdout, stderr }); });
  });
}

t.test("IOLoop.current() is one instance per thread", async (t) => {
  t.equal(IOLoop.current(), IOLoop.current());
  t.not(new IOLoop(), IOLoop.current());
});

t.test("time() is monotonic milliseconds and follows real time", async (t) => {
  const loop = IOLoop.current();
  let previous = loop.time();
  for (let i = 0; i < 10_000; i++) {
    const now = loop.time();
    if (now < previous) t.fail(`time went backwards: ${now} < ${previous}`);
    previous = now;
  }
  const before = loop.time();
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.ok(loop.time() - before >= 29, "a 30 ms timer advances time() by about 30");
});

t.test("addCallback runs on a later loop turn, in order, with its arguments", async (t) => {
  const { loop, logged } = capturingLoop();
  const seen: string[] = [];
  loop.addCallback((a: string, b: number) => seen.push(`${a}${b}`), "x", 1);
  loop.addCallback(() => seen.push("second"));
  t.same(seen, [], "nothing runs synchronously");
  await waitFor(() => seen.length === 2);
  t.same(seen, ["x1", "second"]);
  t.same(logged, []);
});

t.test("an error thrown by a callback is logged with its stack and the loop goes on", async (t) => {
  const { loop, logged } = capturingLoop();
  let after = false;
  loop.addCallback(function exploding() { throw new Error("boom in callback"); });
  loop.spawnCallback(async function rejecting() { throw new Error("async boom"); });
  loop.addCallback(() => { after = true; });
  await waitFor(() => after && logged.length === 2);
  const sync = logged.find((m) => m.includes("boom in callback")) ?? "";
  t.match(sync, /^Exception in callback exploding: Error: boom in callback\n\s+at /, "named, with the stack");
  t.match(logged.find((m) => m.includes("async boom")) ?? "", /Exception in callback rejecting: Error: async boom\n\s+at /);
});

t.test("spawnCallback runs the function like addCallback", async (t) => {
  const { loop } = capturingLoop();
  let got: unknown;
  loop.spawnCallback((value: number) => { got = value; }, 42);
  t.equal(got, undefined);
  await waitFor(() => got !== undefined);
  t.equal(got, 42);
});

t.test("callLater runs after its delay, not before, with its arguments", async (t) => {
  const loop = IOLoop.current();
  const start = loop.time();
  const order: string[] = [];
  let ranAt = 0;
  loop.callLater(40, (tag: string) => { order.push(tag); ranAt = loop.time(); }, "late");
  loop.callLater(5, (tag: string) => order.push(tag), "early");
  await waitFor(() => order.length === 2);
  t.same(order, ["early", "late"]);
  t.ok(ranAt - start >= 40, `ran ${(ranAt - start).toFixed(2)} ms after, never before 40`);
});

t.test("callAt runs once time() reaches its deadline; a past deadline runs soon", async (t) => {
  const loop = IOLoop.current();
  const deadline = loop.time() + 25;
  let ranAt = 0;
  const handle = loop.callAt(deadline, () => { ranAt = loop.time(); });
  t.equal(handle.deadline, deadline);
  t.ok(handle.pending);
  let pastRan = false;
  loop.callAt(loop.time() - 1000, () => { pastRan = true; });
  await waitFor(() => ranAt > 0 && pastRan);
  t.ok(ranAt >= deadline, `ran at ${ranAt.toFixed(2)}, deadline ${deadline.toFixed(2)}`);
  t.notOk(handle.pending, "a handle that ran is no longer pending");
  t.throws(() => loop.callAt(Number.NaN, () => {}), { code: ErrorCode.TIMER_ARGUMENT });
});

t.test("removeTimeout cancels a pending call", async (t) => {
  const loop = IOLoop.current();
  let cancelledRan = false;
  const handle = loop.callLater(10, () => { cancelledRan = true; });
  loop.removeTimeout(handle);
  t.notOk(handle.pending);
  let sentinel = false;
  loop.callLater(60, () => { sentinel = true; });
  await waitFor(() => sentinel);
  t.notOk(cancelledRan, "the removed call never ran, although a later one did");
});

t.test("removeTimeout is safe after the call ran, twice, and from inside the callback", async (t) => {
  const { loop, logged } = capturingLoop();
  let runs = 0;
  const handle = loop.callLater(1, () => {
    runs++;
    loop.removeTimeout(handle);
  });
  await waitFor(() => runs === 1);
  t.doesNotThrow(() => { loop.removeTimeout(handle); loop.removeTimeout(handle); });
  t.same(logged, [], "removing from inside the callback raised nothing");

  // One callback cancelling another that is due at the same moment.
  let victimRan = false;
  let killerRan = false;
  const when = loop.time() + 10;
  const victimHolder: { handle?: ReturnType<IOLoop["callAt"]> } = {};
  loop.callAt(when, () => { killerRan = true; if (victimHolder.handle) loop.removeTimeout(victimHolder.handle); });
  victimHolder.handle = loop.callAt(when + 5, () => { victimRan = true; });
  let sentinel = false;
  loop.callLater(60, () => { sentinel = true; });
  await waitFor(() => sentinel);
  t.ok(killerRan);
  t.notOk(victimRan, "a call removed by an earlier callback does not run");
});

t.test("addFuture calls back with the settled promise, fulfilled or rejected", async (t) => {
  const { loop, logged } = capturingLoop();
  const ok = Promise.resolve("value");
  const failed = Promise.reject(new Error("nope"));
  const results: string[] = [];
  loop.addFuture(ok, async (future) => { results.push(`ok:${await future}`); });
  loop.addFuture(failed, async (future) => {
    try { await future; } catch (error) { results.push(`failed:${(error as Error).message}`); }
  });
  t.same(results, [], "not called synchronously");
  await waitFor(() => results.length === 2);
  t.same(results.sort(), ["failed:nope", "ok:value"]);
  t.same(logged, []);
});

t.test("runSync resolves to the result of a sync or async function", async (t) => {
  const loop = IOLoop.current();
  t.equal(await loop.runSync(() => 7), 7);
  t.equal(await loop.runSync(async () => { await new Promise((r) => setTimeout(r, 5)); return "done"; }), "done");
  await t.rejects(loop.runSync(() => { throw new Error("sync failure"); }), { message: "sync failure" });
  await t.rejects(loop.runSync(() => 1, { timeout: -1 }), { code: ErrorCode.TIMER_ARGUMENT });
});

t.test("runSync rejects with TimeoutError after its timeout and aborts the signal", async (t) => {
  const loop = IOLoop.current();
  let signal: AbortSignal | undefined;
  const started = loop.time();
  const never = loop.runSync(async (s) => {
    signal = s;
    await new Promise((resolve) => setTimeout(resolve, 5_000).unref());
    return "too late";
  }, { timeout: 50 });
  await t.rejects(never, TimeoutError);
  await t.rejects(never, { code: ErrorCode.TIMEOUT, message: /50 ms/ });
  const elapsed = loop.time() - started;
  t.ok(elapsed >= 49 && elapsed < 10_000, `rejected after ${elapsed.toFixed(1)} ms`);
  t.equal(signal?.aborted, true);
  t.type(signal?.reason, TimeoutError);
  t.equal(await loop.runSync(() => "quick", { timeout: 1_000 }), "quick", "a fast function beats its timeout");
});


t.test("start() twice shares one run; stop() before start() makes start() return at once", async (t) => {
  const loop = new IOLoop();
  const first = loop.start();
  t.equal(loop.start(), first);
  loop.stop();
  await first;
  loop.stop();
  let resolved = false;
  await loop.start().then(() => { resolved = true; });
  t.ok(resolved);
  const again = loop.start();
  let againResolved = false;
  void again.then(() => { againResolved = true; });
  await new Promise((resolve) => setImmediate(resolve));
  t.notOk(againResolved, "the Tornado rule applies once: the next start() runs until stop()");
  loop.stop();
  await again;
});

t.test("runInExecutor submits to the given executor, else the default", async (t) => {
  const calls: string[] = [];
  const fake = (label: string): Executor => ({
    async submit<R>(name: string, ...args: unknown[]): Promise<R> {
      calls.push(`${label}:${name}(${args.join(",")})`);
      return `${label} result` as R;
    },
  });
  const loop = new IOLoop();
  await t.rejects(loop.runInExecutor(null, "spin", 1), ExecutorError);
  await t.rejects(loop.runInExecutor(undefined, "spin", 1), { code: ErrorCode.EXECUTOR });
  t.equal(await loop.runInExecutor<string>(fake("explicit"), "spin", 1, 2), "explicit result");
  loop.setDefaultExecutor(fake("default"));
  t.equal(await loop.runInExecutor<string>(null, "add", 3), "default result");
  t.same(calls, ["explicit:spin(1,2)", "default:add(3)"]);
});

t.test("stats() reports loop delay percentiles and utilization", async (t) => {
  const loop = IOLoop.current();
  loop.stats(); // starts the shared monitor
  await new Promise((resolve) => setTimeout(resolve, 60));
  const started = performance.now();
  while (performance.now() - started < 200) { /* block the loop on purpose */ }
  await new Promise((resolve) => setTimeout(resolve, 60));
  const stats = loop.stats();
  // A sampled measure: a block shows as its length less up to one 50 ms sampling period.
  t.ok(stats.delay.max >= 140, `max ${stats.delay.max} ms after a 200 ms block`);
  t.ok(stats.delay.p50 <= stats.delay.p90 && stats.delay.p90 <= stats.delay.p99 && stats.delay.p99 <= stats.delay.max);
  t.ok(stats.utilization > 0 && stats.utilization <= 1, `utilization ${stats.utilization}`);
});

t.test("a logger that throws does not take the loop down", async (t) => {
  const loop = new IOLoop({ logError: () => { throw new Error("logger down"); } });
  let after = false;
  loop.addCallback(() => { throw new Error("first"); });
  loop.addCallback(() => { after = true; });
  await waitFor(() => after);
  t.ok(after, "the next callback still ran");
});

t.test("by default callback errors go to typhoon's log, so setLogger can route them", async (t) => {
  const lines: string[] = [];
  const previous = setLogger((level, message) => lines.push(`${level}: ${message}`));
  t.teardown(() => { setLogger(previous); });
  new IOLoop().addCallback(function routed() { throw new Error("to the sink"); });
  await waitFor(() => lines.length === 1);
  t.match(lines[0], /^error: Exception in callback routed: Error: to the sink\n\s+at /);
});

t.test("runInExecutor runs a task on a real ThreadPoolExecutor, given or default", async (t) => {
  const pool = new ThreadPoolExecutor({ module: new URL("../../scripts/tasks.ts", import.meta.url), maxWorkers: 1 });
  t.teardown(() => pool.shutdown({ wait: false }));
  const loop = new IOLoop();
  const expected = spin(0.01);
  t.equal(await loop.runInExecutor<number>(pool, "spin", 0.01), expected);
  loop.setDefaultExecutor(pool);
  t.equal(await loop.runInExecutor<number>(null, "spin", 0.01), expected);
  t.equal(pool.stats().completed, 2, "both ran on the pool");
});

// The process-level promises, in one child process (each start of `node --import tsx` costs
// seconds on a loaded machine). Its steps run in order; each test below checks one of them.
let child: ReturnType<typeof runChild> | undefined;
const processRun = (): ReturnType<typeof runChild> => (child ??= runChild(`
  const loop = IOLoop.current();
  loop.addCallback(function failing() { throw new Error("child boom"); });
  await new Promise((resolve) => setTimeout(resolve, 20));
  console.log("still alive");

  // Only an unref'd timer is pending: runSync alone must keep the process running.
  console.log(await loop.runSync(() => new Promise((resolve) => setTimeout(() => resolve("runSync finished"), 100).unref())));

  setTimeout(() => loop.stop(), 300).unref();
  const cpu = process.cpuUsage();
  await loop.start();
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ stopped: true, cpuMs: (used.user + used.system) / 1000 }));

  loop.callLater(10_000, () => console.log("unref'd one ran")).unref();
  loop.callLater(50, () => console.log("ref'd one ran"));
  process.on("exit", () => console.log("exited"));
`));

t.test("a throwing callback never crashes the process; the default log is stderr", async (t) => {
  const result = await processRun();
  t.match(result.stdout, /^still alive\n/);
  t.match(result.stderr, /Exception in callback failing: Error: child boom\n\s+at /);
});

t.test("runSync keeps the process alive until its function finishes", async (t) => {
  t.match((await processRun()).stdout, /\nrunSync finished\n/);
});

t.test("start() keeps the process alive until stop(), without spinning", async (t) => {
  const line = /^\{.*\}$/m.exec((await processRun()).stdout)?.[0] ?? "{}";
  const report = JSON.parse(line) as { stopped?: boolean; cpuMs?: number };
  t.equal(report.stopped, true, "start() resolved after stop(), so the unref'd timer had a live process");
  t.ok((report.cpuMs ?? Infinity) < 150, `about 300 ms waiting used ${report.cpuMs} ms of CPU`);
});

t.test("an unref'd timeout lets the process exit; a ref'd one keeps it alive", async (t) => {
  const result = await processRun();
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /\nref'd one ran\nexited\n$/);
  t.notMatch(result.stdout, /unref'd one ran/);
});
