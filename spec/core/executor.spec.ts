/**
 * ThreadPoolExecutor on real threads: lazy start, results and values of every kind, errors
 * thrown by tasks, map/proxy, parallelism, a free event loop, stats, and process lifetime.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import { threadId as mainThreadId } from "node:worker_threads";
import { ThreadPoolExecutor, type ThreadPoolOptions } from "../../core/executor/pool.ts";
import { IOLoop } from "../../core/loop/ioloop.ts";

const TASKS = new URL("../fixtures/tasks.ts", import.meta.url);

function makePool(test: Test, options: Partial<ThreadPoolOptions> = {}): ThreadPoolExecutor {
  const pool = new ThreadPoolExecutor({ module: TASKS, ...options });
  test.teardown(() => pool.shutdown({ wait: false }));
  return pool;
}

// Thread start-up (tsx included) is the slow part of these specs: tests that need no options
// of their own share one pool.
const shared = makePool(t);

t.test("threads start on first use, not at construction", async (t) => {
  const pool = makePool(t);
  t.equal(pool.stats().workers, 0, "no thread before the first call");
  t.equal(await pool.submit("add", 2, 3), 5);
  t.equal(pool.stats().workers, 1, "one call started one thread");
});

t.test("submit runs the task on another thread and resolves to its result", async (t) => {
  const pool = shared;
  const id = await pool.submit<number>("threadId");
  t.not(id, mainThreadId, "ran off the main thread");
  t.equal(await pool.submit("add", 0.5, 0.25), 0.75);
});

t.test("values of every structured-clone kind cross both ways intact", async (t) => {
  const pool = shared;
  const cyclic: { self?: unknown; name: string } = { name: "loop" };
  cyclic.self = cyclic;
  const args = [
    "héllo ✓ 𝄞", "", -0, NaN, Infinity, 2 ** 53, -7, 1.5, 10n ** 30n, true, false, null, undefined,
    new Date(1_700_000_000_000), /ab+c/gi, new Map<unknown, unknown>([["k", [1, 2]], [3, new Set(["x"])]]),
    { nested: { list: [1, "two", { three: 3 }] } }, new Float64Array([1.5, -2.25]), Buffer.from("bytes"),
    new Uint8Array([1, 2, 3]).buffer, cyclic, [1, , 3],
  ];
  const back = await pool.submit<unknown[]>("echo", ...args);
  t.equal(back.length, args.length);
  t.equal(back[0], "héllo ✓ 𝄞");
  t.ok(Object.is(back[2], -0), "-0 stays -0");
  t.ok(Number.isNaN(back[3]), "NaN");
  t.equal(back[4], Infinity);
  t.equal(back[5], 2 ** 53);
  t.equal(back[8], 10n ** 30n);
  t.equal(back[12], undefined);
  t.ok(back[13] instanceof Date && back[13].getTime() === 1_700_000_000_000, "Date");
  t.ok(back[14] instanceof RegExp && String(back[14]) === "/ab+c/gi", "RegExp");
  const map = back[15] as Map<unknown, unknown>;
  t.ok(map instanceof Map && (map.get(3) as Set<string>).has("x"), "Map of Set");
  t.same(back[16], { nested: { list: [1, "two", { three: 3 }] } });
  t.ok(back[17] instanceof Float64Array, "Float64Array");
  t.same([...(back[17] as Float64Array)], [1.5, -2.25]);
  t.ok(Buffer.isBuffer(back[18]) && (back[18] as Buffer).toString() === "bytes", "Buffer");
  t.ok(back[19] instanceof ArrayBuffer && new Uint8Array(back[19] as ArrayBuffer)[2] === 3, "ArrayBuffer");
  const loop = back[20] as { self: unknown; name: string };
  t.equal(loop.self, loop, "cycles are kept");
  t.notOk(1 in (back[21] as unknown[]), "array holes are kept");
});

t.test("a thrown error keeps its message, name, stack and own properties", async (t) => {
  const pool = shared;
  const error = await pool.submit("failQuota", "over the limit").catch((e: unknown) => e);
  t.ok(error instanceof Error, "an Error");
  const e = error as Error & { code?: string };
  t.equal(e.name, "QuotaError");
  t.equal(e.message, "over the limit");
  t.equal(e.code, "E_QUOTA");
  t.match(e.stack, /QuotaError: over the limit\n\s+at failQuota .*fixtures\/tasks\.ts/);
});

t.test("an async task's rejection rejects the call with the same kind of error", async (t) => {
  const pool = shared;
  const error = await pool.submit("failLater", "out of range").catch((e: unknown) => e);
  t.ok(error instanceof RangeError, "a RangeError");
  t.equal((error as Error).message, "out of range");
});

t.test("a thrown value that is not an Error is rejected as is", async (t) => {
  const pool = shared;
  t.equal(await pool.submit("throwString", "plain").catch((e: unknown) => e), "plain");
});

t.test("an unknown task rejects with a TypeError naming it", async (t) => {
  const pool = shared;
  await t.rejects(pool.submit("noSuchTask"), { name: "TypeError", message: /exports no function "noSuchTask"/ });
});

t.test("arguments or results that cannot be cloned reject that call only", async (t) => {
  const pool = shared;
  await t.rejects(pool.submit("echo", () => 1), /could not be cloned/);
  await t.rejects(pool.submit("unclonable"), /could not be cloned/);
  t.equal(await pool.submit("add", 1, 1), 2, "the pool goes on");
});

t.test("async tasks resolve to their awaited value", async (t) => {
  const pool = shared;
  t.same(await pool.submit("later", 5, { ok: true }), { ok: true });
});

t.test("map runs one call per item and keeps the order", async (t) => {
  const pool = shared;
  t.same(await pool.map("echo", ["a", "b", "c"]), [["a"], ["b"], ["c"]]);
});

t.test("proxy gives typed methods that run the module's tasks", async (t) => {
  const pool = makePool(t);
  const tasks = pool.proxy<typeof import("../fixtures/tasks.ts")>();
  const sum: number = await tasks.add(20, 22);
  t.equal(sum, 42);
  t.equal((tasks as unknown as { then?: unknown }).then, undefined, "awaiting the proxy itself submits nothing");
  t.equal(pool.stats().completed, 1);
});

t.test("IOLoop.runInExecutor runs the task on the pool", async (t) => {
  const pool = shared;
  t.equal(await IOLoop.current().runInExecutor<number>(pool, "add", 1, 2), 3);
});

t.test("two CPU-bound tasks run at the same time on two threads", async (t) => {
  const pool = makePool(t, { maxWorkers: 2 });
  const counter = new Int32Array(new SharedArrayBuffer(4));
  // Each call spins until the other has arrived: run one after the other, neither would meet.
  const [a, b] = await Promise.all([0, 1].map(() => pool.submit<{ met: boolean; thread: number }>("rendezvous", counter, 2, 15_000)));
  t.ok(a!.met && b!.met, "both calls were running at once");
  t.not(a!.thread, b!.thread, "on two threads");
});

t.test("the event loop stays free while a task holds a thread", async (t) => {
  const pool = shared;
  let turns = 0;
  let stop = false;
  const spinLoop = (): void => {
    turns++;
    if (!stop) setTimeout(spinLoop, 1);
  };
  spinLoop();
  await pool.submit("busy", 400);
  stop = true;
  t.ok(turns >= 10, `the loop turned ${turns} times during 400 ms of thread work`);
});

t.test("stats counts threads, busy threads, queued, completed and failed calls", async (t) => {
  const pool = makePool(t, { maxWorkers: 1 });
  const running = pool.submit("busy", 200);
  const queued = pool.submit("add", 1, 2);
  t.same(pool.stats(), { workers: 1, busy: 1, queued: 1, completed: 0, failed: 0 });
  await Promise.all([running, queued]);
  await pool.submit("failQuota", "x").catch(() => undefined);
  t.same(pool.stats(), { workers: 1, busy: 0, queued: 0, completed: 2, failed: 1 });
});

t.test("a pool keeps the process alive while it works and not once idle", async (t) => {
  const script = fileURLToPath(new URL("../fixtures/tasks-lifetime.ts", import.meta.url));
  const child = spawnSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8", timeout: 20_000 });
  t.equal(child.signal, null, "exited by itself (not killed by the timeout)");
  t.equal(child.status, 0, child.stderr);
  t.equal(child.stdout.trim(), "done 5", "the in-flight call finished before the process ended");
});

t.test("a plain .js task module given as a file path runs on a worker thread", async (t) => {
  const pool = new ThreadPoolExecutor({ module: fileURLToPath(new URL("../fixtures/tasks-plain.js", import.meta.url)), maxWorkers: 1 });
  t.teardown(() => pool.shutdown({ wait: false }));
  const result = await pool.submit<{ value: number; threadId: number }>("double", 21);
  t.equal(result.value, 42);
  t.not(result.threadId, mainThreadId, "off the main thread");
});
