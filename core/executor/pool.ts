/**
 * `ThreadPoolExecutor`: runs the exported functions of a task module on worker threads, truly in
 * parallel, without blocking the event loop. The public face of `core/executor/`.
 *
 * Calls wait in the pool's queue until a thread can take them. A thread takes one call at a time
 * while calls are long; when they are short (measured), a thread is given a pipeline of them so
 * a burst crosses the ring with one wake-up instead of one per call.
 */
import os from "node:os";
import { resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";
import type { ResourceLimits } from "node:worker_threads";
import { AbortError, ExecutorError, TimeoutError } from "../errors.ts";
import { START_TIMEOUT_MS, WorkerThread, type Job, type ThreadSpec } from "./thread.ts";

/** Options of a {@link ThreadPoolExecutor}. */
export interface ThreadPoolOptions {
  /** The task module: a `.ts` or `.js` file (path relative to the working directory, or URL). */
  module: string | URL;
  /** Threads at most; default `os.availableParallelism()`. */
  maxWorkers?: number;
  /** Calls that may wait for a free thread; one more rejects with an `ExecutorError`. Default unlimited. */
  maxQueue?: number;
  /** Default timeout of every call in ms (see {@link SubmitOptions.timeout}). */
  taskTimeout?: number;
  /** Limits of each thread (`maxOldGenerationSizeMb` ...); a thread past them is replaced. */
  resourceLimits?: ResourceLimits;
  /**
   * How long a new thread may take to load the task module, in ms (default 10 s; 0: no limit).
   * A thread that has not loaded it by then is replaced, and after three in a row the waiting
   * calls are rejected. Raise it for a module that does heavy work when loaded (a model, a
   * large table).
   */
  startTimeout?: number;
}

/** Options of one call ({@link ThreadPoolExecutor.submitWith}). */
export interface SubmitOptions {
  /** Aborting rejects with an `AbortError`; a running call's thread is terminated and replaced. */
  signal?: AbortSignal;
  /**
   * Rejects with a `TimeoutError` this many ms after the call is handed to a running thread
   * (time waiting in the pool's queue, or for a new thread to start, does not count: use
   * `signal` to bound that); a running call's thread is terminated and replaced, as for an abort.
   */
  timeout?: number;
  /** `ArrayBuffer`s moved to the thread instead of copied (they are detached here). */
  transfer?: readonly ArrayBuffer[];
}

/** A snapshot of a pool ({@link ThreadPoolExecutor.stats}). */
export interface ExecutorStats {
  /** Threads started and alive. */
  workers: number;
  /** Threads with a call in flight. */
  busy: number;
  /** Calls submitted and not started yet. */
  queued: number;
  /** Calls that resolved. */
  completed: number;
  /** Calls that rejected (thrown, crashed, aborted, timed out). */
  failed: number;
}

/** A task: any exported function of the task module. */
export type TaskFunction = (...args: never[]) => unknown;
/** The typed face of a task module: each exported function, returning a promise. */
export type TaskProxy<M> = {
  readonly [K in keyof M as M[K] extends TaskFunction ? K : never]:
    M[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
};

/** Short calls get a pipeline of about this much work per thread (µs). */
const PIPELINE_MICROS = 2000;
const MAX_PIPELINE = 256;
/** Threads in a row that may fail to start in time before the waiting calls are rejected. */
const MAX_STALLED_STARTS = 3;

class Call implements Job {
  state: "queued" | "sent" | "done" = "queued";
  thread: WorkerThread<Call> | null = null;
  timeout: number | undefined;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  constructor(readonly id: number, readonly name: string, readonly args: readonly unknown[],
    readonly transfer: readonly ArrayBuffer[] | undefined,
    readonly resolve: (value: never) => void, readonly reject: (reason: unknown) => void) {}
}

function toModuleUrl(module: string | URL): URL {
  if (module instanceof URL) return module;
  return /^[a-z][a-z0-9+.-]+:/i.test(module) && !/^[a-z]:[\\/]/i.test(module) ? new URL(module) : pathToFileURL(resolvePath(module));
}

const isJavaScript = (url: URL): boolean => /\.[cm]?js$/.test(url.pathname);

/** Pools created in this process, for the metrics endpoint (weakly held: a dropped pool goes). */
const livePools = new Set<WeakRef<ThreadPoolExecutor>>();

/** The thread pools alive in this process (read by `MetricsHandler`'s executor metrics). */
export function liveExecutors(): ThreadPoolExecutor[] {
  const pools: ThreadPoolExecutor[] = [];
  for (const ref of livePools) {
    const pool = ref.deref();
    if (pool === undefined) livePools.delete(ref);
    else pools.push(pool);
  }
  return pools;
}

/**
 * A pool of worker threads running the exported functions of one module.
 *
 * @example
 * const pool = new ThreadPoolExecutor({ module: new URL("./tasks.ts", import.meta.url) });
 * const sum = await pool.submit<number>("spin", 5);
 * const tasks = pool.proxy<typeof import("./tasks.ts")>();
 * await tasks.spin(5);
 * await pool.shutdown();
 */
export class ThreadPoolExecutor {
  readonly #spec: ThreadSpec;
  readonly #maxWorkers: number;
  readonly #maxQueue: number;
  readonly #taskTimeout: number | undefined;
  #threads: WorkerThread<Call>[] = [];
  #queue: Call[] = [];
  #queueHead = 0;
  #queued = 0;
  #nextId = 1;
  #completed = 0;
  #failed = 0;
  #avgMicros: number | undefined;
  #closed = false;
  #stalledStarts = 0;
  #terminating = false;
  #idleWaiters: (() => void)[] = [];

  constructor(options: ThreadPoolOptions) {
    const taskModule = toModuleUrl(options.module);
    const workerModule = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);
    const entry = isJavaScript(taskModule) && isJavaScript(workerModule) ? workerModule : new URL("./bootstrap.mjs", import.meta.url);
    const startTimeout = options.startTimeout ?? START_TIMEOUT_MS;
    if (typeof startTimeout !== "number" || !(startTimeout >= 0)) {
      throw new ExecutorError(`startTimeout must be a number of milliseconds ≥ 0 (0: no limit), got ${String(startTimeout)}`);
    }
    this.#spec = { entry, workerModule, taskModule, resourceLimits: options.resourceLimits, startTimeout };
    this.#maxWorkers = Math.max(1, Math.floor(options.maxWorkers ?? os.availableParallelism()));
    this.#maxQueue = options.maxQueue ?? Infinity;
    this.#taskTimeout = options.taskTimeout;
    livePools.add(new WeakRef(this));
  }

  /** Runs task `name` with `args` on a thread; resolves to its result. */
  submit<R = unknown>(name: string, ...args: unknown[]): Promise<R> {
    return this.submitWith<R>({}, name, ...args);
  }

  /**
   * {@link submit} with per-call options: an abort signal, a timeout, buffers to transfer.
   *
   * @example
   * const ctl = new AbortController();
   * const pending = pool.submitWith({ signal: ctl.signal, timeout: 1000 }, "spin", 50);
   * ctl.abort(); // rejects with AbortError; the thread running it is terminated and replaced
   */
  submitWith<R = unknown>(options: SubmitOptions, name: string, ...args: unknown[]): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.#closed) {
        reject(new ExecutorError(`ThreadPoolExecutor is shut down: task "${name}" not run`));
        return;
      }
      if (options.signal?.aborted) {
        reject(new AbortError(`Task "${name}" was aborted before it was submitted`, { cause: options.signal.reason }));
        return;
      }
      const call = new Call(this.#nextId, name, args, options.transfer, resolve as (value: never) => void, reject);
      call.timeout = options.timeout ?? this.#taskTimeout;
      this.#nextId = this.#nextId >= 0x7fffffff ? 1 : this.#nextId + 1;
      this.#queue.push(call);
      this.#queued++;
      this.#dispatch();
      if (call.state === "queued" && this.#queued > this.#maxQueue) {
        this.#queued--;
        call.state = "done";
        reject(new ExecutorError(`ThreadPoolExecutor queue is full (maxQueue ${this.#maxQueue}): task "${name}" rejected`));
        return;
      }
      if (options.signal !== undefined && call.state !== "done") {
        const signal = options.signal;
        call.signal = signal;
        call.onAbort = () => this.#cancel(call, new AbortError(`Task "${name}" was aborted`, { cause: signal.reason }));
        signal.addEventListener("abort", call.onAbort, { once: true });
      }
    });
  }

  /** Runs `name` once per item of `items` (each as the single argument); resolves to the results in order. */
  map<R = unknown>(name: string, items: Iterable<unknown>): Promise<R[]> {
    return Promise.all(Array.from(items, (item) => this.submit<R>(name, item)));
  }

  /**
   * A typed object whose methods submit the module's tasks.
   *
   * @example
   * const tasks = pool.proxy<typeof import("./tasks.ts")>();
   * const checksum: number = await tasks.spin(5);
   */
  proxy<M extends object>(): TaskProxy<M> {
    const handler: ProxyHandler<object> = {
      // "then" stays undefined so that awaiting the proxy itself does not submit a task.
      get: (_target, key) => typeof key === "string" && key !== "then"
        ? (...args: unknown[]) => this.submit(key, ...args)
        : undefined,
    };
    return new Proxy({}, handler) as TaskProxy<M>;
  }

  /**
   * Stops taking calls and terminates the threads. With `wait` (the default) queued and running
   * calls finish first; without, they reject with an `ExecutorError`. Resolves when every
   * thread has exited.
   */
  async shutdown({ wait = true }: { wait?: boolean } = {}): Promise<void> {
    this.#closed = true;
    if (wait) {
      while (this.#queued > 0 || this.#threads.some((thread) => thread.inflight.size > 0)) {
        await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      }
    } else {
      for (let call = this.#shift(); call !== undefined; call = this.#shift()) {
        this.#settle(call, false, new ExecutorError(`ThreadPoolExecutor was shut down before task "${call.name}" ran`));
      }
    }
    this.#terminating = true;
    const threads = this.#threads;
    this.#threads = [];
    await Promise.all(threads.map((thread) => thread.kill("ThreadPoolExecutor was shut down while the task was running")));
  }

  /** Threads, busy threads, waiting calls, and totals so far. */
  stats(): ExecutorStats {
    let busy = 0;
    let inflight = 0;
    for (const thread of this.#threads) {
      if (thread.inflight.size > 0) busy++;
      inflight += thread.inflight.size;
    }
    return { workers: this.#threads.length, busy, queued: this.#queued + inflight - busy, completed: this.#completed, failed: this.#failed };
  }

  #shift(): Call | undefined {
    while (this.#queueHead < this.#queue.length) {
      const call = this.#queue[this.#queueHead++];
      if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#queueHead);
        this.#queueHead = 0;
      }
      if (call !== undefined && call.state === "queued") {
        this.#queued--;
        return call;
      }
    }
    return undefined;
  }

  #dispatch(): void {
    while (this.#queued > 0) {
      const thread = this.#pickThread();
      if (thread === null) return;
      const call = this.#shift();
      if (call === undefined) return;
      call.state = "sent";
      call.thread = thread;
      try {
        thread.send(call);
      } catch (error) {
        // The arguments could not be cloned: that is the caller's error, as postMessage's would be.
        this.#settle(call, false, error);
        continue;
      }
      if (call.timeout !== undefined) this.#armTimeout(call, thread, call.timeout);
    }
  }

  #pickThread(): WorkerThread<Call> | null {
    let best: WorkerThread<Call> | null = null;
    for (const thread of this.#threads) {
      if (thread.alive && (best === null || thread.inflight.size < best.inflight.size)) best = thread;
    }
    if (best !== null && best.inflight.size === 0) return best;
    if (this.#threads.length < this.#maxWorkers && !this.#terminating) return this.#spawn();
    const depth = this.#avgMicros === undefined ? 1
      : Math.min(MAX_PIPELINE, Math.max(1, Math.floor(PIPELINE_MICROS / Math.max(1, this.#avgMicros))));
    return best !== null && best.inflight.size < depth ? best : null;
  }

  #spawn(): WorkerThread<Call> {
    const thread = new WorkerThread<Call>(this.#spec, {
      started: () => {
        this.#stalledStarts = 0;
      },
      settled: (call, ok, value, micros) => {
        this.#avgMicros = this.#avgMicros === undefined ? micros : this.#avgMicros * 0.8 + micros * 0.2;
        this.#settle(call, ok, value);
        this.#dispatch();
      },
      died: (dead, error, running, notStarted, started) => {
        this.#threads = this.#threads.filter((thread) => thread !== dead);
        if (running !== undefined) this.#settle(running, false, error);
        if (this.#terminating) {
          for (const call of notStarted) this.#settle(call, false, new ExecutorError(`ThreadPoolExecutor was shut down before task "${call.name}" ran`));
        } else if (!started && (!dead.stalled || ++this.#stalledStarts >= MAX_STALLED_STARTS)) {
          // The module does not load: every waiting call would fail the same way.
          for (const call of notStarted) this.#settle(call, false, error);
          for (let call = this.#shift(); call !== undefined; call = this.#shift()) this.#settle(call, false, error);
        } else {
          for (const call of notStarted) {
            call.state = "queued";
            // Re-armed when the call reaches its next thread.
            clearTimeout(call.timer);
          }
          this.#queue = [...notStarted, ...this.#queue.slice(this.#queueHead)];
          this.#queueHead = 0;
          this.#queued += notStarted.length;
        }
        this.#dispatch();
        this.#notifyIdle();
      },
    });
    this.#threads.push(thread);
    return thread;
  }

  /** The clock runs once the thread is up: a new thread's start-up is not the task's time. */
  #armTimeout(call: Call, thread: WorkerThread<Call>, ms: number): void {
    thread.whenStarted(() => {
      if (call.state !== "sent" || call.thread !== thread) return;
      call.timer = setTimeout(() => this.#cancel(call, new TimeoutError(`Task "${call.name}" timed out after ${ms} ms`)), ms);
    });
  }

  #cancel(call: Call, error: Error): void {
    if (call.state === "done") return;
    if (call.state === "queued") this.#queued--;
    const thread = call.thread;
    if (call.state === "sent" && thread !== null && thread.cancel(call)) {
      this.#threads = this.#threads.filter((other) => other !== thread);
      void thread.kill(`Worker thread was terminated to stop task "${call.name}" (${error.message})`);
    }
    this.#settle(call, false, error);
    this.#dispatch();
  }

  #settle(call: Call, ok: boolean, value: unknown): void {
    if (call.state === "done") return;
    call.state = "done";
    clearTimeout(call.timer);
    if (call.onAbort !== undefined) call.signal?.removeEventListener("abort", call.onAbort);
    if (ok) {
      this.#completed++;
      call.resolve(value as never);
    } else {
      this.#failed++;
      call.reject(value);
    }
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
