/**
 * The supervisor of `start(n)` and `forkProcesses(n)`: forks children that run the same script
 * (node:cluster), waits for each to say it is ready, restarts the ones that fail (same task id,
 * with backoff, up to `maxRestarts` in total), drains them all on SIGTERM/SIGINT, replaces them
 * one at a time on SIGHUP, and exits when all are gone.
 */
import cluster, { type Worker } from "node:cluster";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { ErrorCode, TyphoonError } from "../errors.ts";
import { Handoff, messageKind, noteLoad, type HandoffTarget } from "./handoff.ts";
import type { BindAddress } from "./httpserver.ts";
import { log } from "../log.ts";
import type { Scheduling } from "./process.ts";

/** What a supervisor runs. */
export interface SupervisorOptions {
  count: number;
  maxRestarts: number;
  scheduling: Scheduling;
  /** Grace period of a draining child before it is killed (ms). */
  drainTimeout: number;
  /** The address the supervisor itself accepts on (least-busy scheduling), or null. */
  address: BindAddress | null;
}

/** Environment variables a supervisor passes to its children. */
export const CHILD_ENV = { taskId: "TYPHOON_TASK_ID", scheduling: "TYPHOON_SCHEDULING" } as const;

/** A child that lived this long is no longer in a crash loop: its next restart is immediate (ms). */
const STABLE_MS = 5_000;
/** Longest pause between restarts of a crash-looping task (ms). */
const MAX_BACKOFF_MS = 5_000;
/** How long a reload waits for a new child to be ready before giving up on it (ms). */
const RELOAD_READY_MS = 60_000;

/** One supervisor per process: signals and node:cluster are process-wide. */
let supervising = false;

interface Child extends HandoffTarget {
  readonly task: number;
  readonly worker: Worker;
  readonly startedAt: number;
  ready: boolean;
  retired: boolean;
}

/** Forks and supervises `count` children of this same script. */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #children = new Set<Child>();
  readonly #slots: (Child | null)[];
  readonly #crashes: number[];
  readonly #waiters = new Set<() => void>();
  #handoff: Handoff<Child> | null = null;
  #restarts = 0;
  #pendingRestarts = 0;
  #stopping = false;
  #reloading = false;
  #exitCode = 0;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#slots = new Array<Child | null>(options.count).fill(null);
    this.#crashes = new Array<number>(options.count).fill(0);
  }

  /** Forks every child; resolves once all of them are ready. */
  async start(): Promise<void> {
    if (supervising) throw new TyphoonError(ErrorCode.SERVER_STATE, "This process already supervises children (start(n) or forkProcesses(n) was called twice)");
    supervising = true;
    const { scheduling, address } = this.#options;
    cluster.schedulingPolicy = scheduling === "shared" ? cluster.SCHED_NONE : cluster.SCHED_RR;
    if (scheduling === "least-busy" && address !== null) {
      this.#handoff = new Handoff(() => [...this.#children].filter((c) => c.ready && !c.retired));
      await this.#handoff.listen(address);
    }
    process.on("SIGTERM", () => this.stop());
    process.on("SIGINT", () => this.stop());
    process.on("SIGHUP", () => void this.reload());
    for (let task = 0; task < this.#options.count; task++) this.#fork(task);
    await this.#until(() => this.#slots.every((c) => c !== null && c.ready));
    log.info(`typhoon: ${this.#options.count} children ready (${scheduling})`);
  }

  /** Drains every child (SIGTERM to each), kills what is left after the grace period, then exits. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#handoff?.close();
    for (const child of this.#children) this.#retire(child);
    setTimeout(() => {
      for (const child of this.#children) child.worker.process.kill("SIGKILL");
    }, this.#options.drainTimeout + 2_000).unref();
    this.#exitIfDone();
  }

  /** Replaces the children one at a time, each new one ready before its old one drains. */
  async reload(): Promise<void> {
    if (this.#stopping || this.#reloading) return;
    this.#reloading = true;
    log.info("typhoon: SIGHUP: reloading children one at a time");
    try {
      for (let task = 0; task < this.#options.count && !this.#stopping; task++) {
        const old = this.#slots[task];
        if (old === null || old === undefined) continue;
        this.#fork(task);
        const ready = await this.#until(() => this.#stopping || this.#slots[task]?.ready === true, RELOAD_READY_MS);
        if (this.#stopping) break;
        if (!ready) {
          log.error(`typhoon: reload: the new child ${task} was not ready after ${RELOAD_READY_MS} ms; reload abandoned`);
          break;
        }
        this.#retire(old);
        await this.#until(() => !this.#children.has(old), this.#options.drainTimeout + 2_000);
        if (this.#children.has(old)) old.worker.process.kill("SIGKILL");
      }
    } finally {
      this.#reloading = false;
    }
  }

  #fork(task: number): Child {
    const worker = cluster.fork({ [CHILD_ENV.taskId]: String(task), [CHILD_ENV.scheduling]: this.#options.scheduling });
    // Sends whose callback has not run. Node queues a handle sent before the previous one was
    // acknowledged, and drops that queue, callbacks and all, when the child dies: failing them
    // at exit lets the handoff give those connections to another child.
    const unsent = new Map<Socket, (error: Error | null) => void>();
    const child: Child = {
      task, worker, startedAt: performance.now(), ready: false, retired: false,
      sent: 0, received: 0, open: 0, inflight: 0, lastHeard: performance.now(),
      send: (message: unknown, socket: Socket, done: (error: Error | null) => void) => {
        unsent.set(socket, done);
        worker.send(message as object, socket, (error: Error | null) => {
          if (unsent.delete(socket)) done(error ?? null);
        });
      },
    };
    this.#children.add(child);
    this.#slots[task] = child;
    worker.on("message", (message: unknown) => {
      if (!noteLoad(child, message) || messageKind(message) !== "ready") return;
      child.ready = true;
      this.#handoff?.wake();
      this.#wake();
    });
    // A failed send is reported through the callback; this only keeps an IPC error from crashing the supervisor.
    worker.on("error", (err) => log.debug(`typhoon: child ${task} IPC error: ${String(err)}`));
    worker.on("exit", (code, signal) => {
      // Node postpones the channel's teardown until the un-acknowledged handle is acknowledged,
      // which a dead child never does: the connection would stay open here, unread. Close it, so
      // its client sees a close, as for the connections the child had.
      const channel = worker.process as unknown as { _pendingMessage?: { handle?: { close?: () => void } } | null };
      channel._pendingMessage?.handle?.close?.();
      if (channel._pendingMessage) channel._pendingMessage = null;
      for (const [socket, done] of unsent) {
        unsent.delete(socket);
        done(new Error("the child exited before taking the connection"));
      }
      this.#exited(child, code, signal);
    });
    return child;
  }

  #retire(child: Child): void {
    if (child.retired) return;
    child.retired = true;
    child.worker.process.kill("SIGTERM");
  }

  #exited(child: Child, code: number | null, signal: string | null): void {
    this.#children.delete(child);
    const current = this.#slots[child.task] === child;
    if (current) this.#slots[child.task] = null;
    this.#wake();
    const how = signal !== null ? `signal ${signal}` : `status ${String(code)}`;
    const who = `child ${child.task} (pid ${child.worker.process.pid})`;
    if (!current || child.retired || this.#stopping) return this.#exitIfDone();
    if (code === 0 && signal === null) {
      log.info(`typhoon: ${who} exited with status 0; not restarted`);
      return this.#exitIfDone();
    }
    if (this.#restarts >= this.#options.maxRestarts) {
      log.error(`typhoon: ${who} exited with ${how}; giving up after ${this.#restarts} restarts `
        + `(maxRestarts ${this.#options.maxRestarts}) [${ErrorCode.TOO_MANY_RESTARTS}]`);
      this.#exitCode = 1;
      return this.stop();
    }
    this.#restarts++;
    const lived = performance.now() - child.startedAt;
    const crashes = this.#crashes[child.task] = lived >= STABLE_MS ? 1 : this.#crashes[child.task]! + 1;
    // The first restart is immediate; a crash loop backs off 100 ms, 200 ms, ... up to 5 s.
    const backoff = crashes <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 100 * 2 ** (crashes - 2));
    log.warn(`typhoon: ${who} exited with ${how}; restarting in ${backoff} ms `
      + `(restart ${this.#restarts} of at most ${this.#options.maxRestarts})`);
    this.#pendingRestarts++;
    setTimeout(() => {
      this.#pendingRestarts--;
      if (this.#stopping) return this.#exitIfDone();
      this.#fork(child.task);
    }, backoff);
  }

  #exitIfDone(): void {
    if (this.#children.size > 0 || this.#pendingRestarts > 0) return;
    log.info(`typhoon: all children gone; supervisor exits with status ${this.#exitCode}`);
    process.exit(this.#exitCode);
  }

  /** Resolves true once `condition` holds (checked on every change), false after `timeout` ms. */
  #until(condition: () => boolean, timeout = Infinity): Promise<boolean> {
    if (condition()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (condition()) done(true);
      };
      const timer = Number.isFinite(timeout) ? setTimeout(() => done(false), timeout) : undefined;
      const done = (value: boolean): void => {
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(value);
      };
      this.#waiters.add(check);
    });
  }

  #wake(): void {
    for (const check of [...this.#waiters]) check();
  }
}
