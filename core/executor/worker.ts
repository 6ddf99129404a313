/**
 * The thread side of the executor: imports the task module, then runs CALL frames from the
 * main→worker ring one at a time and writes OK/ERROR frames to the worker→main ring.
 *
 * Between bursts the thread blocks briefly in `Atomics.wait` (a new call wakes it in
 * microseconds), then sleeps on its own event loop until the main thread's doorbell, so timers
 * and promises a task left behind still run. Results are announced in batches: one wake-up when
 * the input runs dry, after a long task, or every {@link FLUSH_EVERY} results.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { CANCELS, FrameReader, Ring, RUNNING, type FrameView } from "./channel.ts";
import { decodeValues, FLAG_SIDE, FrameEncoder, readHead } from "./codec.ts";
import type { SideBuffer } from "./values.ts";
import { describeError } from "./failure.ts";
import { SharedIn, type SharedLookup } from "./shared.ts";

/** What the pool gives a new thread. */
export interface WorkerInit {
  taskModule: string;
  workerModule: string;
  toWorker: SharedArrayBuffer;
  fromWorker: SharedArrayBuffer;
  port: MessagePort;
}

/** Messages on the side port, main → worker. */
export type SideMessage = { kind: "buffers"; list: SideBuffer[] } | { kind: "cancel"; id: number }
  | { kind: "share"; list: [number, SharedArrayBuffer][] } | { kind: "forget"; id: number };

/** How long an idle thread blocks before it yields to its event loop. */
const HOT_WAIT_MS = 5;
/** A busy thread still lets its event loop turn this often. */
const YIELD_EVERY_MS = 50;
/** Results written before the main thread is woken, at most. */
const FLUSH_EVERY = 64;
/** A task longer than this has its result announced at once. */
const LONG_TASK_MICROS = 100;

const init = workerData as WorkerInit;
const input = new Ring(init.toWorker);
const output = new Ring(init.fromWorker);
const reader = new FrameReader(input);
const encoder = new FrameEncoder();
/** Shared buffers the main thread gave this thread, by id (see `shared.ts`). */
const shared = new SharedIn();
encoder.shared = shared;
/** An id not known yet was shared on the side port just before its frame: read the port, look again. */
const sharedLookup: SharedLookup = {
  byId: (id) => {
    if (shared.byId(id) === undefined) pollSide();
    return shared.byId(id);
  },
};
const tasks: Record<string, unknown> = await import(init.taskModule);

const sideBuffers: SideBuffer[][] = [];
const cancelled = new Set<number>();
let cancelsSeen = 0;
let unflushed = 0;
let wakeUp: (() => void) | null = null;

function pollSide(): void {
  for (let got = receiveMessageOnPort(init.port); got !== undefined; got = receiveMessageOnPort(init.port)) {
    const message = got.message as SideMessage;
    if (message.kind === "cancel") cancelled.add(message.id);
    else if (message.kind === "share") for (const [id, buffer] of message.list) shared.add(id, buffer);
    else if (message.kind === "forget") shared.forget(message.id);
    else sideBuffers.push(message.list);
  }
}

function takeSideBuffers(): SideBuffer[] {
  // The main thread posts a frame's buffers before writing the frame, so they are queued by now.
  if (sideBuffers.length === 0) pollSide();
  const list = sideBuffers.shift();
  if (list === undefined) throw new Error("Executor frame arrived without its buffers");
  return list;
}

function flush(): void {
  if (unflushed === 0) return;
  unflushed = 0;
  output.notifyReader();
}

function writeFrame(frame: Buffer): void {
  let at = output.write(frame, 0);
  while (at < frame.length) {
    output.notifyReader();
    output.waitWritableSync();
    at += output.write(frame, at);
  }
}

function finish(id: number, ok: boolean, started: number, value: unknown): void {
  const micros = (performance.now() - started) * 1000;
  let frame: Buffer;
  try {
    frame = encoder.result(id, ok, micros, ok ? value : describeError(value));
  } catch (error) {
    // The result (or an error's extra properties) cannot be cloned: report that instead.
    frame = encoder.result(id, false, micros, describeError(ok ? error : value, false));
  }
  if (encoder.side.length > 0) init.port.postMessage({ kind: "buffers", list: encoder.side }, encoder.transfer);
  writeFrame(frame);
  Atomics.store(input.ctrl, RUNNING, 0);
  unflushed++;
  if (micros > LONG_TASK_MICROS || unflushed >= FLUSH_EVERY) flush();
}

function run(view: FrameView): Promise<void> | undefined {
  const head = readHead(view.buf, view.start);
  let args: unknown[] = [];
  let decodeError: unknown;
  shared.beginCall();
  try {
    const side = (head.flags & FLAG_SIDE) !== 0 ? takeSideBuffers() : [];
    args = decodeValues(view.buf, view.start, view.end, head, side, sharedLookup);
  } catch (error) {
    decodeError = error;
  }
  reader.release();
  // RUNNING is published before the cancel check; the main thread does the reverse, so a
  // cancelled task is either skipped here or seen running there (and its thread terminated).
  Atomics.store(input.ctrl, RUNNING, head.id);
  const cancels = Atomics.load(input.ctrl, CANCELS);
  if (cancels !== cancelsSeen) {
    cancelsSeen = cancels;
    pollSide();
  }
  if (cancelled.delete(head.id)) {
    Atomics.store(input.ctrl, RUNNING, 0);
    return undefined;
  }
  const started = performance.now();
  let result: unknown;
  try {
    if (decodeError !== undefined) throw decodeError;
    const fn = tasks[head.name];
    if (typeof fn !== "function") throw new TypeError(`Task module ${init.taskModule} exports no function "${head.name}"`);
    result = fn(...args);
  } catch (error) {
    finish(head.id, false, started, error);
    return undefined;
  }
  if (result instanceof Promise || (typeof result === "object" && result !== null && typeof (result as { then?: unknown }).then === "function")) {
    return Promise.resolve(result).then((value) => finish(head.id, true, started, value),
      (error: unknown) => finish(head.id, false, started, error));
  }
  finish(head.id, true, started, result);
  return undefined;
}

async function serve(): Promise<never> {
  let lastYield = performance.now();
  for (;;) {
    const view = reader.next();
    if (view === null) {
      flush();
      const have = reader.stalledAt;
      if (!input.waitReadableSync(HOT_WAIT_MS, have)) {
        await yieldToLoop();
        if (input.sleepReader(have)) await new Promise<void>((resolve) => { wakeUp = resolve; });
      }
      lastYield = performance.now();
      continue;
    }
    const pending = run(view);
    if (pending !== undefined) {
      flush();
      await pending;
    }
    if (performance.now() - lastYield > YIELD_EVERY_MS) {
      flush();
      await yieldToLoop();
      lastYield = performance.now();
    }
  }
}

if (parentPort === null) throw new Error("core/executor/worker is the entry of a worker thread, not a module to import");
const mainThread = parentPort;
// The main thread's doorbell: wakes this thread when it sleeps on its event loop.
mainThread.on("message", () => {
  const resolve = wakeUp;
  wakeUp = null;
  resolve?.();
});
input.doorbell = output.doorbell = () => mainThread.postMessage(0);
mainThread.postMessage("ready");
// Not awaited: a top-level await that never settles would end the thread with exit code 13.
void serve();
