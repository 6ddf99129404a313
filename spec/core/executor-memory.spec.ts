/**
 * ThreadPoolExecutor's data path on real threads: shared memory reaches the task without a copy
 * (a 64 MiB buffer modified in place), shared buffers travel both ways, messages larger than
 * the ring cross it, transferred buffers move, and a pipelined burst keeps every result apart.
 */
import t from "tap";
import { RING_BYTES } from "../../core/executor/channel.ts";
import { ThreadPoolExecutor } from "../../core/executor/pool.ts";

const pool = new ThreadPoolExecutor({ module: new URL("../fixtures/tasks.ts", import.meta.url), maxWorkers: 2 });
t.teardown(() => pool.shutdown({ wait: false }));

t.test("a 64 MiB SharedArrayBuffer view is modified in place by the task and seen by the caller", async (t) => {
  const view = new Int32Array(new SharedArrayBuffer(64 * 1024 * 1024));
  t.equal(await pool.submit("fill", view, 7), view.length);
  let wrong = 0;
  for (let i = 0; i < view.length; i++) if (view[i] !== 7) wrong++;
  t.equal(wrong, 0, "every element of the caller's memory was written by the task");
});

t.test("a view of part of a shared buffer gives the task exactly that part", async (t) => {
  const bytes = new Uint8Array(new SharedArrayBuffer(64));
  t.equal(await pool.submit("fill", bytes.subarray(8, 16), 9), 8);
  t.same([bytes[7], bytes[8], bytes[15], bytes[16]], [0, 9, 9, 0]);
});

t.test("a SharedArrayBuffer argument, alone or inside an object, is the same memory in the task", async (t) => {
  const sab = new SharedArrayBuffer(16);
  t.equal(await pool.submit("addToShared", sab, 5), 5);
  t.equal(new Int32Array(sab)[3], 5, "the caller sees the task's writes");
  const [back] = await pool.submit<[{ inner: { sab: SharedArrayBuffer } }]>("echo", { inner: { sab } });
  t.ok(back!.inner.sab instanceof SharedArrayBuffer, "still a SharedArrayBuffer on the way back");
  new Int32Array(back!.inner.sab)[0] = 99;
  t.equal(new Int32Array(sab)[0], 99, "and still the same memory");
});

t.test("a SharedArrayBuffer made by a task comes back as shared memory", async (t) => {
  const sab = await pool.submit<SharedArrayBuffer>("makeShared", 32, 1);
  t.ok(sab instanceof SharedArrayBuffer);
  t.equal(new Uint8Array(sab)[31], 1);
  await pool.submit("addToShared", sab, 1);
  t.equal(new Uint8Array(sab)[0], 2, "a later task writes to the memory the caller holds");
});

t.test("messages larger than the ring cross it both ways", async (t) => {
  const big = "é".repeat(RING_BYTES * 2);
  const [echoed] = await pool.submit<[string]>("echo", big);
  t.equal(echoed, big, "a string of twice the ring's size goes there and back");
  const long = await pool.submit<string>("repeat", "z", RING_BYTES * 3 + 17);
  t.equal(long.length, RING_BYTES * 3 + 17, "a result of three rings comes back");
  const data = Buffer.alloc(RING_BYTES * 4 + 3, 1);
  t.same(await pool.submit("digest", data), { length: data.length, sum: data.length % 1_000_003 });
});

t.test("several large messages in flight at once each arrive whole", async (t) => {
  const sizes = [RING_BYTES + 1, RING_BYTES * 2, 5, RING_BYTES - 3];
  const results = await Promise.all(sizes.map((size) => pool.submit<[string]>("echo", "x".repeat(size))));
  t.same(results.map(([s]) => s.length), sizes);
});

t.test("transfer moves an ArrayBuffer to the thread instead of copying it", async (t) => {
  const buffer = new ArrayBuffer(1024 * 1024);
  new Uint8Array(buffer).fill(2);
  const pending = pool.submitWith({ transfer: [buffer] }, "digest", new Uint8Array(buffer));
  t.equal(buffer.byteLength, 0, "detached here as soon as it is sent");
  t.same(await pending, { length: 1024 * 1024, sum: (2 * 1024 * 1024) % 1_000_003 });
});

t.test("a burst of small calls in flight settles each with its own result", async (t) => {
  const n = 5000;
  const results = await Promise.all(Array.from({ length: n }, (_, i) => pool.submit<number>("add", i, i)));
  t.equal(results.filter((value, i) => value !== 2 * i).length, 0, "no result went to another call");
  t.equal(pool.stats().queued, 0);
});
