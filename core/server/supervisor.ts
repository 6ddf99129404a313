/**
 * The supervisor of `start(n)` and `forkProcesses(n)`: forks children that run the same script
 * (node:cluster), waits for each to say it is ready, restarts the ones that fail (same task id,
 * with backoff, up to `maxRestarts` in total), drains them all on SIGTERM/SIGINT, replaces them
 * one at a time on SIGHUP (and, in debug mode, when a source file changes: `autoreload.ts`),
 * and exits when all are gone.
 */
import cluster, { type Worker } from "node:cluster";
import type { Socket } from "node:net";
import { relative } from "node:path";
import { performance } from "node:perf_hooks";
import { ErrorCode, TyphoonError } from "../errors.ts";
import { Handoff, LOAD_FD, LOAD_FD_ENV, LoadFile, messageKind, monotonicMs, noteLoad, type HandoffTarget } from "./handoff.ts";
import { log } from "../log.ts";
import type { AutoreloadSpec, BindAddress, Scheduling } from "./options.ts";
import { forgetWorker, onMetricsMessage, type GatherSource } from "./metrics-gather.ts";
import { appRoot, reportedModules, reportingExecArgv, SourceWatcher } from "./autoreload.ts";

/** What a supervisor runs. */
export interface SupervisorOptions {
  count: number;
  maxRestarts: number;
  scheduling: Scheduling;
  /** Grace period of a draining child before it is killed (ms). */
  drainTimeout: number;
  /** How long the supervisor keeps accepting after SIGTERM while the children's health checks say 503 (ms). */
  drainDelay?: number;
  /** The address the supervisor itself accepts on (least-busy scheduling), or null. */
  address: BindAddress | null;
  /** Debug mode: reload the children when the app's sources change. */
  autoreload?: AutoreloadSpec | undefined;
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
  /** The child this one is to replace in a reload; it keeps its task until this one is ready. */
  replaces: Child | null;
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
  /** Why a reload was asked for while one ran: another follows, so the last change is what serves. */
  #reloadAgain: string | null = null;
  #watcher: SourceWatcher | null = null;
  #exitCode = 0;
  /** What a metrics scrape under start(n) gathers from (`metrics-gather.ts`). */
  readonly #gatherSource: GatherSource = {
    readyWorkers: () => [...this.#children].filter((c) => c.ready).map((c) => c.worker),
    restarts: () => this.#restarts,
  };

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
    if (this.#options.autoreload !== undefined) this.#watch(this.#options.autoreload);
    for (let task = 0; task < this.#options.count; task++) this.#fork(task);
    await this.#until(() => this.#slots.every((c) => c !== null && c.ready));
    log.info(`typhoon: ${this.#options.count} children ready (${scheduling})`);
  }

  /** Drains every child (SIGTERM to each), kills what is left after the grace period, then exits. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    const delay = this.#options.drainDelay ?? 0;
    if (delay > 0 && this.#handoff !== null) {
      // drainDelay: the children hear SIGTERM now (their health checks answer 503) and are still
      // handed connections; the supervisor stops accepting once the delay is over.
      for (const child of this.#children) child.worker.process.kill("SIGTERM");
      setTimeout(() => this.#stopAccepting(), delay).unref();
    } else this.#stopAccepting();
    this.#watcher?.close();
    setTimeout(() => {
      for (const child of this.#children) child.worker.process.kill("SIGKILL");
    }, delay + this.#options.drainTimeout + 2_000).unref();
    this.#exitIfDone();
  }

  #stopAccepting(): void {
    this.#handoff?.close();
    for (const child of this.#children) this.#retire(child);
  }

  /**
   * Replaces the children one at a time, each new one ready before its old one drains. A new
   * child that exits or hangs before it is ready (the new code does not start) ends the reload:
   * the old children keep serving, and no restart is counted. Asked for during a reload, it
   * runs again once that one is over.
   */
  async reload(reason = "SIGHUP"): Promise<void> {
    if (this.#stopping) return;
    if (this.#reloading) {
      this.#reloadAgain = reason;
      return;
    }
    this.#reloading = true;
    log.info(`typhoon: ${reason}: reloading children one at a time`);
    let replaced = 0;
    try {
      for (let task = 0; task < this.#options.count && !this.#stopping; task++) {
        const old = this.#slots[task];
        if (old === null || old === undefined) continue;
        const fresh = this.#fork(task, old);
        const settled = await this.#until(() => this.#stopping || fresh.ready || !this.#children.has(fresh), RELOAD_READY_MS);
        if (this.#stopping) break;
        if (!fresh.ready) {
          if (!settled) {
            this.#giveBack(fresh);
            fresh.worker.process.kill("SIGKILL");
          }
          const why = settled ? "exited before it was ready" : `was not ready after ${RELOAD_READY_MS} ms`;
          log.error(`typhoon: reload stopped: the new child ${task} ${why}; `
            + `${replaced === 0 ? "the old children keep" : `${replaced} new and the other old children`} serving`);
          break;
        }
        log.info(`typhoon: new child ${task} ready in ${Math.round(performance.now() - fresh.startedAt)} ms; the old one drains`);
        fresh.replaces = null;
        this.#retire(old);
        replaced++;
        await this.#until(() => !this.#children.has(old), this.#options.drainTimeout + 2_000);
        if (this.#children.has(old)) old.worker.process.kill("SIGKILL");
      }
      if (replaced === this.#options.count) log.info(`typhoon: reload done: ${replaced} children replaced`);
    } finally {
      this.#reloading = false;
    }
    const again = this.#reloadAgain;
    this.#reloadAgain = null;
    if (again !== null && !this.#stopping) await this.reload(again);
  }

  /** Debug mode: watches the main script, the templates, and the modules the children report. */
  #watch(spec: AutoreloadSpec): void {
    const main = process.argv[1];
    const watcher = this.#watcher = new SourceWatcher(appRoot(main ?? process.cwd()), (paths) => {
      void this.reload(`${paths.map((p) => relativeName(p)).join(", ")} changed`);
    });
    if (main !== undefined) watcher.addModule(main);
    for (const tree of spec.trees) watcher.addTree(tree);
    cluster.setupPrimary({ execArgv: reportingExecArgv() });
    log.info("typhoon: debug: reloading the children when the app's sources change");
  }

  #fork(task: number, replaces: Child | null = null): Child {
    // Least-busy: the child records its load in a file of its own, passed as its descriptor LOAD_FD.
    const loadFile = this.#handoff === null ? null : LoadFile.open();
    if (this.#handoff !== null) {
      cluster.setupPrimary({ stdio: ["inherit", "inherit", "inherit", "ipc", ...(loadFile === null ? [] : [loadFile.fd])] });
    }
    const worker = cluster.fork({ [CHILD_ENV.taskId]: String(task), [CHILD_ENV.scheduling]: this.#options.scheduling,
      ...(loadFile === null ? {} : { [LOAD_FD_ENV]: String(LOAD_FD) }) });
    // Sends whose callback has not run. Node queues a handle sent before the previous one was
    // acknowledged, and drops that queue, callbacks and all, when the child dies: failing them
    // at exit lets the handoff give those connections to another child.
    const unsent = new Map<Socket, (error: Error | null) => void>();
    const child: Child = {
      task, worker, replaces, startedAt: performance.now(), ready: false, retired: false,
      sent: 0, received: 0, open: 0, inflight: 0, lastHeard: monotonicMs(),
      send: (message: unknown, socket: Socket, done: (error: Error | null) => void) => {
        unsent.set(socket, done);
        worker.send(message as object, socket, (error: Error | null) => {
          if (unsent.delete(socket)) done(error ?? null);
        });
      },
      ...(loadFile === null ? {} : { refresh: () => loadFile.read(child) }),
    };
    this.#children.add(child);
    this.#slots[task] = child;
    worker.on("message", (message: unknown) => {
      if (onMetricsMessage(this.#gatherSource, worker, message)) return;
      const modules = this.#watcher === null ? null : reportedModules(message);
      if (modules !== null) for (const url of modules) this.#watcher?.addModule(url);
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
      forgetWorker(worker);
      loadFile?.close();
      this.#exited(child, code, signal);
    });
    return child;
  }

  #retire(child: Child): void {
    if (child.retired) return;
    child.retired = true;
    child.worker.process.kill("SIGTERM");
  }

  /** A replacement that did not become ready gives its task back to the child it was to replace. */
  #giveBack(child: Child): boolean {
    const old = child.replaces;
    if (old === null || !this.#children.has(old) || old.retired || this.#slots[child.task] !== child) return false;
    this.#slots[child.task] = old;
    return true;
  }

  #exited(child: Child, code: number | null, signal: string | null): void {
    this.#children.delete(child);
    const how = signal !== null ? `signal ${signal}` : `status ${String(code)}`;
    const who = `child ${child.task} (pid ${child.worker.process.pid})`;
    // A reload's new child that dies before it is ready: its code does not start. Not a crash
    // to retry (it would fail the same way): the old child keeps its task, reload() reports it.
    if (!child.ready && this.#giveBack(child)) {
      log.warn(`typhoon: ${who}, started by a reload, exited with ${how} before it was ready`);
      this.#wake();
      return;
    }
    const current = this.#slots[child.task] === child;
    if (current) this.#slots[child.task] = null;
    this.#wake();
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

/** A changed file's path as the log shows it: relative to the working folder when inside it. */
function relativeName(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === "" || rel.startsWith("..") ? path : rel;
}
