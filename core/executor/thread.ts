/**
 * The main thread's handle on one executor thread: starts it, writes its calls into the
 * main→worker ring, reads its results from the worker→main ring, and explains its death.
 *
 * The handle never blocks: a call that does not fit the ring is queued and written as the worker
 * drains it, and results are read when the worker rings the doorbell (one message per batch of
 * results, none while the main thread is still reading). The `Worker` is `ref`'d only while it has calls in
 * flight, so an idle pool does not keep the process alive.
 */
import { receiveMessageOnPort, MessageChannel, Worker, type MessagePort, type ResourceLimits } from "node:worker_threads";
import type { ExecutorError } from "../errors.ts";
import { CANCELS, FrameReader, Ring, RUNNING } from "./channel.ts";
import { decodeValues, FLAG_SIDE, FrameEncoder, FrameType, readHead } from "./codec.ts";
import type { SideBuffer } from "./values.ts";
import { deathError, describeError, reviveError } from "./failure.ts";
import { SharedOut } from "./shared.ts";
import type { SideMessage, WorkerInit } from "./worker.ts";

/** A call as the thread sees it. */
export interface Job {
  readonly id: number;
  readonly name: string;
  readonly args: readonly unknown[];
  readonly transfer: readonly ArrayBuffer[] | undefined;
}

/** What a thread reports to its pool. */
export interface ThreadEvents<J extends Job> {
  /** A call finished: `value` is the result, or the rebuilt error when `ok` is false. */
  settled(job: J, ok: boolean, value: unknown, micros: number): void;
  /** The thread loaded the task module and is serving. */
  started(): void;
  /** The thread is gone: `running` was its current call, `notStarted` never began. */
  died(thread: WorkerThread<J>, error: ExecutorError, running: J | undefined, notStarted: J[], started: boolean): void;
}

/** How to start a thread. */
export interface ThreadSpec {
  entry: URL;
  workerModule: URL;
  taskModule: URL;
  resourceLimits: ResourceLimits | undefined;
  /** See {@link START_TIMEOUT_MS}; 0: no limit. */
  startTimeout: number;
}

/**
 * By default, a thread that has not loaded the task module by then is terminated and replaced
 * (`startTimeout` changes it). On Node 20 a new thread very rarely hangs inside the module loader
 * (tsx's hooks) while sibling threads are being terminated; a healthy start of a light module
 * takes well under this even on a loaded machine.
 */
export const START_TIMEOUT_MS = 10_000;

const names = new Map<string, Buffer>();
function encodeName(name: string): Buffer {
  let bytes = names.get(name);
  if (bytes === undefined) {
    bytes = Buffer.from(name, "utf8");
    if (bytes.length > 255) throw new RangeError(`Task name is longer than 255 bytes: ${name.slice(0, 40)}...`);
    if (names.size < 10_000) names.set(name, bytes);
  }
  return bytes;
}

/** One worker thread and its two rings. */
export class WorkerThread<J extends Job> {
  /** Calls written to this thread and not yet settled, in the order they were sent. */
  readonly inflight = new Map<number, J>();
  readonly #worker: Worker;
  readonly #events: ThreadEvents<J>;
  readonly #toWorker = Ring.create();
  readonly #fromWorker = Ring.create();
  readonly #reader = new FrameReader(this.#fromWorker);
  readonly #encoder = new FrameEncoder();
  /** Shared buffers this thread was given, named by id in later frames (see `shared.ts`). */
  readonly #shared = new SharedOut((id) => this.#forget(id));
  readonly #port: MessagePort;
  readonly #writeQueue: Buffer[] = [];
  #writeOffset = 0;
  #notifyQueued = false;
  #started = false;
  readonly #onStarted: (() => void)[] = [];
  #crash: Error | null = null;
  #killed: string | null = null;
  #exited: Promise<void>;
  /** False once the thread is being terminated or is gone: send it nothing more. */
  alive = true;
  /** True if the thread was terminated for not starting in time (`startTimeout`). */
  stalled = false;
  readonly #startTimer: NodeJS.Timeout | undefined = undefined;
  #reported = false;

  constructor(spec: ThreadSpec, events: ThreadEvents<J>) {
    this.#events = events;
    this.#encoder.shared = this.#shared;
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const workerData: WorkerInit = {
      taskModule: spec.taskModule.href, workerModule: spec.workerModule.href,
      toWorker: this.#toWorker.sab, fromWorker: this.#fromWorker.sab, port: port2,
    };
    // execArgv is not inherited: the parent's loaders (tap's, tsx's) are not the thread's business.
    this.#worker = new Worker(spec.entry, {
      workerData, transferList: [port2], execArgv: [],
      ...(spec.resourceLimits === undefined ? {} : { resourceLimits: spec.resourceLimits }),
    });
    this.#worker.unref();
    // 0 is no limit, and so is more than a timer can wait (about 24.8 days).
    if (spec.startTimeout > 0 && spec.startTimeout <= 0x7fffffff) this.#startTimer = setTimeout(() => this.#abandon(spec.startTimeout), spec.startTimeout).unref();
    this.#toWorker.doorbell = this.#fromWorker.doorbell = () => this.#worker.postMessage(0);
    this.#worker.on("message", (message: unknown) => {
      if (message === "ready") {
        this.#started = true;
        clearTimeout(this.#startTimer);
        this.#events.started();
        for (const callback of this.#onStarted.splice(0)) callback();
      }
      else this.#onDoorbell();
    });
    this.#worker.on("error", (error: Error) => { this.#crash ??= error; });
    this.#exited = new Promise((resolve) => this.#worker.once("exit", (code: number) => {
      this.#onExit(code);
      resolve();
    }));
  }

  /** Writes `job` to the thread. Throws (and sends nothing) if its arguments cannot be cloned. */
  send(job: J): void {
    let frame: Buffer;
    try {
      frame = this.#encoder.call(job.id, encodeName(job.name), job.args, job.transfer);
    } catch (error) {
      this.#shared.discardFresh();
      throw error;
    }
    const fresh = this.#shared.takeFresh();
    if (fresh.length > 0) {
      // Shared once under their new ids; this frame and later ones only name them.
      const message: SideMessage = { kind: "share", list: fresh };
      this.#port.postMessage(message);
    }
    if (this.#encoder.side.length > 0) {
      const message: SideMessage = { kind: "buffers", list: this.#encoder.side };
      this.#port.postMessage(message, this.#encoder.transfer);
    }
    this.inflight.set(job.id, job);
    this.#write(frame);
    if (this.inflight.size === 1) {
      this.#worker.ref();
      // Asks for the doorbell; results already there (a race with the last batch) are read soon.
      if (!this.#fromWorker.sleepReader(this.#reader.stalledAt)) queueMicrotask(() => this.#read());
    }
  }

  /** Runs `callback` once the thread has loaded the task module (at once if it has). */
  whenStarted(callback: () => void): void {
    if (this.#started) callback();
    else this.#onStarted.push(callback);
  }

  /** Withdraws `job`. True if it is running now: only terminating the thread stops it. */
  cancel(job: J): boolean {
    if (!this.inflight.delete(job.id)) return false;
    if (this.inflight.size === 0) this.#worker.unref();
    const message: SideMessage = { kind: "cancel", id: job.id };
    this.#port.postMessage(message);
    Atomics.add(this.#toWorker.ctrl, CANCELS, 1);
    return Atomics.load(this.#toWorker.ctrl, RUNNING) === job.id;
  }

  /** Lets the thread drop its handle on a shared buffer the main thread no longer holds. */
  #forget(id: number): void {
    if (!this.alive) return;
    const message: SideMessage = { kind: "forget", id };
    this.#port.postMessage(message);
    // The thread looks at its side port when this counter moves (see worker.ts).
    Atomics.add(this.#toWorker.ctrl, CANCELS, 1);
  }

  /** Terminates the thread; `reason` becomes the message of the error its running call gets. */
  kill(reason: string): Promise<void> {
    this.alive = false;
    this.#killed ??= reason;
    void this.#worker.terminate();
    return this.#exited;
  }

  #write(frame: Buffer): void {
    if (this.#writeQueue.length === 0) {
      const n = this.#toWorker.write(frame, 0);
      if (n < frame.length) this.#writeQueue.push(Buffer.from(frame.subarray(n)));
    } else {
      // The encoder's buffer is reused by the next call: keep a copy of what waits.
      this.#writeQueue.push(Buffer.from(frame));
    }
    if (!this.#notifyQueued) {
      this.#notifyQueued = true;
      queueMicrotask(() => {
        this.#notifyQueued = false;
        this.#toWorker.notifyReader();
      });
    }
    if (this.#writeQueue.length > 0) this.#pump();
  }

  /** Writes what waits in the queue as the worker frees room; sleeps until its doorbell when full. */
  #pump(): void {
    for (let frame = this.#writeQueue[0]; frame !== undefined && this.alive; frame = this.#writeQueue[0]) {
      this.#writeOffset += this.#toWorker.write(frame, this.#writeOffset);
      this.#toWorker.notifyReader();
      if (this.#writeOffset === frame.length) {
        this.#writeQueue.shift();
        this.#writeOffset = 0;
      } else if (this.#toWorker.sleepWriter()) {
        return;
      }
    }
  }

  /** Reads every result there is, then sleeps until the worker's doorbell while calls are in flight. */
  #read(): void {
    for (;;) {
      this.#drain();
      if (!this.alive || this.inflight.size === 0) return;
      if (this.#fromWorker.sleepReader(this.#reader.stalledAt)) return;
    }
  }

  #onDoorbell(): void {
    if (!this.alive) return;
    if (this.#writeQueue.length > 0) this.#pump();
    this.#read();
  }

  #drain(): void {
    for (let view = this.#reader.next(); view !== null; view = this.#reader.next()) {
      const head = readHead(view.buf, view.start);
      let ok = head.type === FrameType.OK;
      let value: unknown;
      try {
        const side = (head.flags & FLAG_SIDE) !== 0 ? this.#takeSideBuffers() : [];
        const decoded = decodeValues(view.buf, view.start, view.end, head, side, this.#shared)[0];
        value = ok ? decoded : reviveError(decoded);
      } catch (error) {
        ok = false;
        value = reviveError(describeError(error));
      }
      this.#reader.release();
      const job = this.inflight.get(head.id);
      if (job === undefined) continue;
      this.inflight.delete(head.id);
      if (this.inflight.size === 0) this.#worker.unref();
      this.#events.settled(job, ok, value, head.micros);
    }
  }

  #takeSideBuffers(): SideBuffer[] {
    const got = receiveMessageOnPort(this.#port);
    const message = got?.message as SideMessage | undefined;
    if (message?.kind !== "buffers") throw new Error("Executor result arrived without its buffers");
    return message.list;
  }

  /**
   * Gives up on a thread that did not start in time. Its calls never began, so they go back to
   * the pool at once: a thread stuck in the module loader may not even honour `terminate()`.
   */
  #abandon(ms: number): void {
    this.stalled = true;
    this.alive = false;
    this.#killed = `Worker thread did not load its task module within ${ms} ms (the executor's startTimeout)`;
    const calls = [...this.inflight.values()];
    this.inflight.clear();
    this.#worker.unref();
    void this.#worker.terminate();
    this.#reportDeath(deathError({ code: 1, crash: null, killed: this.#killed, started: false }, undefined), undefined, calls);
  }

  #reportDeath(error: ExecutorError, running: J | undefined, notStarted: J[]): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#events.died(this, error, running, notStarted, this.#started);
  }

  #onExit(code: number): void {
    this.alive = false;
    clearTimeout(this.#startTimer);
    this.#drain();
    const running = this.inflight.get(Atomics.load(this.#toWorker.ctrl, RUNNING));
    const notStarted = [...this.inflight.values()].filter((job) => job !== running);
    this.inflight.clear();
    this.#port.close();
    const error = deathError({ code, crash: this.#crash, killed: this.#killed, started: this.#started }, running?.name);
    this.#reportDeath(error, running, notStarted);
  }
}
