/**
 * The executor's frame codec and failure descriptions in-process, value by value: the paths the
 * thread specs reach only by chance (shared buffers inside Maps, Sets, null-prototype objects and
 * objects reached twice; views of every kind, transferred or copied; frames that refer to a buffer they were not
 * given; every way a thread can die), each checked by what comes out the other side.
 */
import t from "tap";
import { FrameEncoder, FrameType, FLAG_SIDE, decodeValues, readHead } from "../core/executor/codec.ts";
import { deathError, describeError, reviveError } from "../core/executor/failure.ts";
import { ExecutorError } from "../core/index.ts";

/** Encodes a CALL frame and decodes it again, as the thread side does. */
function roundTrip(args: unknown[], transfer?: ArrayBuffer[], side?: (s: readonly (SharedArrayBuffer | ArrayBuffer)[]) => (SharedArrayBuffer | ArrayBuffer)[]) {
  const encoder = new FrameEncoder();
  const frame = Buffer.from(encoder.call(7, Buffer.from("task"), args, transfer));
  const head = readHead(frame, 4);
  const given = side ? side(encoder.side) : encoder.side;
  return { head, values: decodeValues(frame, 4, frame.length, head, given), side: encoder.side, transfer: encoder.transfer };
}

t.test("plain values take the fast encoding and come back equal", (t) => {
  const args = [undefined, null, true, false, 42, -7, -0, 1.5, Number.NaN, "héllo", ""];
  const { head, values, side } = roundTrip(args);
  t.equal(head.type, FrameType.CALL);
  t.equal(head.id, 7);
  t.equal(head.name, "task");
  t.equal(head.flags & FLAG_SIDE, 0, "no side buffers");
  t.same(side, []);
  t.equal(values.length, args.length);
  args.forEach((value, i) => t.ok(Object.is(values[i], value), `value ${i}: ${String(value)}`));
  t.end();
});

t.test("a result frame carries its run time, clamped to 32 bits", (t) => {
  const encoder = new FrameEncoder();
  for (const [ok, micros, expected] of [[true, 12.6, 13], [false, -5, 0], [true, 2 ** 40, 0xffffffff]] as const) {
    const frame = Buffer.from(encoder.result(3, ok, micros, "v"));
    const head = readHead(frame, 4);
    t.equal(head.type, ok ? FrameType.OK : FrameType.ERROR);
    t.equal(head.micros, expected);
    t.same(decodeValues(frame, 4, frame.length, head, []), ["v"]);
  }
  t.end();
});

t.test("shared buffers inside arrays, Maps, Sets, null-prototype objects and objects reached twice stay shared", (t) => {
  const sab = new SharedArrayBuffer(8);
  const bare: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  bare["buf"] = sab;
  const twice = { buf: sab };
  const args = [[1, [sab]], new Map<unknown, unknown>([["k", sab], [sab, "v"]]), new Set([sab, 1]), bare, { a: twice, b: twice }, { untouched: [1, 2] }];
  const { values, side } = roundTrip(args);
  t.equal(side.length, 1, "one side buffer, posted once");
  t.equal(side[0], sab);
  const [array, map, set, obj, pair, plain] = values as [unknown[], Map<unknown, unknown>, Set<unknown>, Record<string, unknown>, Record<string, { buf: unknown }>, unknown];
  t.equal((array[1] as unknown[])[0], sab, "in a nested array");
  t.equal(map.get("k"), sab, "as a Map value");
  t.ok(map.has(sab), "as a Map key");
  t.ok(set.has(sab) && set.has(1), "in a Set");
  t.equal(obj["buf"], sab, "in a null-prototype object");
  t.equal(pair["a"]?.buf, sab, "in an object reached twice");
  t.equal(pair["a"], pair["b"], "still one object");
  t.same(plain, { untouched: [1, 2] });
  t.end();
});

t.test("a shared buffer inside a class instance cannot be passed", (t) => {
  class Holder { constructor(readonly buf: SharedArrayBuffer) {} }
  t.throws(() => new FrameEncoder().call(1, Buffer.from("x"), [new Holder(new SharedArrayBuffer(4))]), /cannot be passed to a thread/);
  t.end();
});

t.test("views of every kind are copied, or passed by reference when their buffer is transferred", (t) => {
  const copied = [new Int16Array([1, -2]), new Float64Array([0.5]), new DataView(new ArrayBuffer(3)), Buffer.from("abc"), new Uint8ClampedArray([300])];
  const { values } = roundTrip(copied);
  t.same([...(values[0] as Int16Array)], [1, -2]);
  t.same([...(values[1] as Float64Array)], [0.5]);
  t.ok(values[2] instanceof DataView);
  t.equal((values[2] as DataView).byteLength, 3);
  t.ok(Buffer.isBuffer(values[3]));
  t.equal((values[3] as Buffer).toString(), "abc");
  t.same([...(values[4] as Uint8ClampedArray)], [255]);

  const owned = new ArrayBuffer(16);
  const view = new Uint32Array(owned, 4, 2);
  view[0] = 99;
  const buf = Buffer.from(owned, 8, 4);
  const sent = roundTrip([view, buf], [owned]);
  t.same(sent.transfer, [owned], "the buffer is listed for transfer");
  const [back, backBuf] = sent.values as [Uint32Array, Buffer];
  t.equal(back.buffer, owned, "a view on the transferred buffer, not a copy");
  t.equal(back.byteOffset, 4);
  t.equal(back[0], 99);
  t.ok(Buffer.isBuffer(backBuf));
  t.equal(backBuf.byteOffset, 8);
  t.equal(backBuf.length, 4);
  t.end();
});

t.test("a frame that refers to a buffer it was not given is refused", (t) => {
  t.throws(() => roundTrip([new SharedArrayBuffer(4)], undefined, () => []), /refers to a buffer it was not given/);
  const owned = new ArrayBuffer(8);
  t.throws(() => roundTrip([new Uint8Array(owned)], [owned], () => []), /refers to a buffer it was not given/);
  t.end();
});

t.test("describeError and reviveError: the error a task threw comes back with its class name and properties", (t) => {
  t.same(describeError("plain"), { thrown: "plain" });
  t.same(describeError({ code: 1 }, false), { thrown: "[object Object]" });
  class ValidationError extends Error {
    field = "email";
    constructor(message: string, options?: ErrorOptions) { super(message, options); this.name = "ValidationError"; }
  }
  const cause = new Error("root");
  const described = describeError(new ValidationError("bad", { cause }));
  t.equal(described.error?.name, "ValidationError");
  t.same(described.error?.props, { name: "ValidationError", field: "email", cause });
  const revived = reviveError(described) as Error & { field?: string };
  t.ok(revived instanceof Error);
  t.equal(revived.name, "ValidationError");
  t.equal(revived.message, "bad");
  t.equal(revived.field, "email");
  t.equal(revived.cause, cause);
  t.same(describeError(new RangeError("r"), false).error?.props, {}, "withProps false drops extras");
  const range = reviveError({ error: { name: "RangeError", message: "r", stack: undefined, props: {} } });
  t.ok(range instanceof RangeError, "a built-in error class comes back as itself");
  t.equal(reviveError(5), 5, "a primitive is returned as is");
  t.equal(reviveError({ thrown: "x" }), "x", "a thrown non-error is returned as it was thrown");
  t.end();
});

t.test("deathError says how a thread died and during which task", (t) => {
  const crash = new TypeError("boom");
  const oom = Object.assign(new Error("out"), { code: "ERR_WORKER_OUT_OF_MEMORY" });
  const cases: [Parameters<typeof deathError>[0], string | undefined, RegExp][] = [
    [{ code: 1, crash: null, killed: "terminated by shutdown", started: true }, "t", /^terminated by shutdown$/],
    [{ code: 1, crash, killed: null, started: false }, undefined, /failed to start: TypeError: boom/],
    [{ code: 3, crash: null, killed: null, started: false }, undefined, /failed to start: exit code 3/],
    [{ code: 1, crash: oom, killed: null, started: true }, "big", /ran out of memory .* while running task "big"/],
    [{ code: 1, crash, killed: null, started: true }, undefined, /uncaught TypeError: boom while idle/],
    [{ code: 2, crash: null, killed: null, started: true }, "t", /exited with code 2 while running task "t"/],
  ];
  for (const [how, task, message] of cases) {
    const error = deathError(how, task);
    t.ok(error instanceof ExecutorError);
    t.match(error.message, message);
    if (how.crash !== null && how.killed === null) t.equal(error.cause, how.crash, "the crash is the cause");
  }
  t.end();
});
