/**
 * How the executor hands payloads over without streaming them through its ring: a shared buffer
 * is shared with a thread once and named by id afterwards (the thread sees the same object each
 * time, results name it back), large ordinary views are copied once and moved, large bodies go
 * beside the frame in one piece, and mid-size frames still stream through the ring when a burst
 * of them overfills it.
 */
import { setImmediate as turn } from "node:timers/promises";
import v8 from "node:v8";
import vm from "node:vm";
import t from "tap";
import { RING_BYTES } from "../../core/executor/channel.ts";
import { LARGE_BODY_BYTES } from "../../core/executor/codec.ts";
import { LARGE_VIEW_BYTES } from "../../core/executor/values.ts";
import { ThreadPoolExecutor } from "../../core/executor/pool.ts";
import { SharedIn, SharedOut } from "../../core/executor/shared.ts";

// One thread, so that "the thread's object" is always the same thread's.
const pool = new ThreadPoolExecutor({ module: new URL("../fixtures/tasks.ts", import.meta.url), maxWorkers: 1 });
t.teardown(() => pool.shutdown({ wait: false }));

t.test("a shared buffer passed again is the very same object in the thread, as a whole or under any view", async (t) => {
  const sab = new SharedArrayBuffer(64);
  t.equal(await pool.submit("sameBufferAsLast", new Uint8Array(sab)), false, "first time: new to the thread");
  t.equal(await pool.submit("sameBufferAsLast", new Float64Array(sab, 8, 2)), true, "a different view of it: the same buffer");
  t.equal(await pool.submit("sameBufferAsLast", sab), true, "the buffer itself: the same buffer");
  t.equal(await pool.submit("sameBufferAsLast", new SharedArrayBuffer(64)), false, "another buffer is another object");
});

t.test("views of a registered buffer reach the task with their own offset, length and type", async (t) => {
  const sab = new SharedArrayBuffer(64);
  await pool.submit("fill", new Uint8Array(sab), 1);
  t.equal(await pool.submit("fill", new Int32Array(sab, 16, 4), 0x02020202), 4);
  const bytes = new Uint8Array(sab);
  t.same([bytes[15], bytes[16], bytes[31], bytes[32]], [1, 2, 2, 1], "exactly bytes 16..31 were written");
  const [back] = await pool.submit<[Int32Array]>("echo", new Int32Array(sab, 16, 4));
  t.ok(back instanceof Int32Array && back.buffer === sab, "a view named by id comes back over the caller's own buffer");
  t.same([back.byteOffset, back.length], [16, 4]);
  const [buf] = await pool.submit<[Buffer]>("echo", Buffer.from(sab, 4, 8));
  t.ok(Buffer.isBuffer(buf) && buf.buffer === sab && buf.byteOffset === 4 && buf.length === 8, "a Buffer stays a Buffer");
});

t.test("a shared buffer inside a cyclic value: cycles and shared references are kept, the memory is shared", async (t) => {
  const sab = new SharedArrayBuffer(8);
  type Node = { buf: SharedArrayBuffer; list: unknown[]; self?: Node; tags: Map<string, Node> };
  const node: Node = { buf: sab, list: [], tags: new Map() };
  node.self = node;
  node.list.push(node, node.list);
  node.tags.set("me", node);
  const [back] = await pool.submit<[Node]>("echo", node);
  t.ok(back.buf instanceof SharedArrayBuffer, "the buffer is still shared memory");
  t.equal(back.self, back, "the cycle through a property");
  t.equal(back.list[0], back, "and through an array");
  t.equal(back.list[1], back.list, "an array holding itself");
  t.equal(back.tags.get("me"), back, "and through a Map");
  new Uint8Array(back.buf)[0] = 9;
  t.equal(new Uint8Array(sab)[0], 9, "the same memory as the caller's");
  t.equal(node.self, node, "the caller's value is untouched");
});

t.test("a result names by id only a buffer of its own call; an older one is shared again", async (t) => {
  const kept = new SharedArrayBuffer(16);
  t.equal(await pool.submit("stash", kept), 16);
  const back = await pool.submit<SharedArrayBuffer>("returnStashed");
  t.ok(back instanceof SharedArrayBuffer, "still shared memory");
  new Uint8Array(back)[0] = 42;
  t.equal(new Uint8Array(kept)[0], 42, "and the same memory as the caller's");
});

t.test("a large ordinary Uint8Array is copied: the task's changes come back, the caller's array is untouched", async (t) => {
  const data = new Uint8Array(LARGE_VIEW_BYTES * 4).fill(7);
  const back = await pool.submit<Uint8Array>("bumpAll", data);
  t.equal(data.byteLength, LARGE_VIEW_BYTES * 4, "not detached");
  t.equal(data[0], 7, "not written by the task");
  t.ok(back instanceof Uint8Array && back !== data && back.length === data.length);
  t.ok(back.every((b) => b === 8), "every byte came back bumped");
  const big = new Uint8Array(LARGE_VIEW_BYTES * 3);
  for (let i = 0; i < big.length; i++) big[i] = i & 0xff;
  const part = big.subarray(LARGE_VIEW_BYTES, LARGE_VIEW_BYTES * 2 + 5);
  const digest = await pool.submit<{ length: number; sum: number }>("digest", part);
  let sum = 0;
  for (const byte of part) sum = (sum + byte) % 1_000_003;
  t.same(digest, { length: part.length, sum }, "a view into a larger buffer gives the task exactly its part");
  const [buffer] = await pool.submit<[Buffer]>("echo", Buffer.alloc(LARGE_VIEW_BYTES + 1, 3));
  t.ok(Buffer.isBuffer(buffer) && buffer.length === LARGE_VIEW_BYTES + 1 && buffer[LARGE_VIEW_BYTES] === 3, "a Buffer stays a Buffer");
});

t.test("a body larger than the ring goes over in one piece, both ways", async (t) => {
  const value = { text: "é".repeat(LARGE_BODY_BYTES), list: Array.from({ length: 1000 }, (_, i) => i) };
  const [back] = await pool.submit<[typeof value]>("echo", value);
  t.same(back, value);
  const long = await pool.submit<string>("repeat", "q", RING_BYTES * 2);
  t.equal(long.length, RING_BYTES * 2);
});

t.test("a burst of mid-size calls larger than the ring still streams through it", async (t) => {
  const size = LARGE_BODY_BYTES / 2;
  const texts = Array.from({ length: Math.ceil((RING_BYTES * 3) / size) }, (_, i) => String.fromCharCode(97 + (i % 26)).repeat(size));
  const results = await Promise.all(texts.map((text) => pool.submit<[string]>("echo", text)));
  t.equal(results.filter(([text], i) => text !== texts[i]).length, 0, "each call got its own text back");
});

t.test("registries: ids, the thread's view of the current call, and forgetting a collected buffer", async (t) => {
  const forgotten: number[] = [];
  const out = new SharedOut((id) => forgotten.push(id));
  const a = new SharedArrayBuffer(8);
  const id = out.idOf(a);
  t.equal(out.idOf(a), id, "one id per buffer");
  t.same(out.takeFresh(), [[id, a]], "a new buffer must be posted once");
  t.same(out.takeFresh(), [], "and only once");
  t.equal(out.byId(id), a);
  const b = new SharedArrayBuffer(8);
  const idB = out.idOf(b);
  out.discardFresh();
  t.equal(out.byId(idB), undefined, "a buffer of a frame that was not sent is not registered");

  const into = new SharedIn();
  into.add(id, a);
  into.beginCall();
  t.equal(into.idOf(a), undefined, "a result may not name a buffer its call did not bring");
  t.equal(into.byId(id), a);
  t.equal(into.idOf(a), id, "but may name one it did");
  into.forget(id);
  t.equal(into.byId(id), undefined);
  t.equal(into.size, 0);

  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  (() => {
    out.idOf(new SharedArrayBuffer(8));
    out.takeFresh();
  })();
  for (let i = 0; i < 200 && forgotten.length === 0; i++) {
    gc();
    await turn();
  }
  t.equal(forgotten.length, 1, "the thread is told to forget a buffer the caller dropped");
});
