/**
 * Least-busy connection handoff, both sides. The supervisor accepts every connection (paused,
 * nothing read) and sends it over IPC to the child that looks least busy; each child feeds the
 * sockets it is handed to its own node server and reports its load on a heartbeat.
 *
 * A report is a fixed record the child writes over the last one in a small file of its own
 * (under /dev/shm where there is one), which the supervisor reads only when it has a connection
 * to hand over. Sent as IPC messages, the reports woke the supervisor 300 times a second under
 * load, each wake-up taking a core from the children (about 4% of a core on the supervisor,
 * and more on the children it displaced); read this way, a steady load of keep-alive
 * connections does not wake the supervisor at all. Each record carries the time it was written
 * on the machine's monotonic clock, so a child's silence is measured from the child's side.
 *
 * Why not Node's round-robin: it hands a connection to the next child even while that child is
 * stuck in CPU work, so a fast request waits behind a slow one. A child whose heartbeat is late
 * is stuck, whatever it said last; it gets no connection while another child answers.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { closeSync, existsSync, openSync, readSync, unlinkSync, writeSync } from "node:fs";
import { Server as NetServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drainHanded } from "./drain.ts";
import type { BindAddress, ServerHandle } from "./options.ts";
import { afterListening, listenOptions } from "./listen.ts";
import { log } from "../log.ts";

/** The key of every message typhoon sends between a supervisor and its children. */
export const CHILD_MESSAGE = "typhoon";

/** The environment variable naming the child's descriptor of its load file. */
export const LOAD_FD_ENV = "TYPHOON_LOAD_FD";
/** Where in a child's stdio the supervisor puts the load file: stdin, stdout, stderr, IPC, then it. */
export const LOAD_FD = 4;
/**
 * One load record: sequence (uint32), requests in flight, open connections, connections
 * received (uint32 each), the time it was written (float64, ms), the sequence again. A record
 * read while the child rewrites it has two different sequences and is read again.
 */
const RECORD_BYTES = 28;

/** Milliseconds on the machine's monotonic clock, the same in every process (`process.hrtime`). */
export function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}

/** How often a child reports its load (ms). */
const HEARTBEAT_MS = 20;
/** A child not heard from for this long is taken to be stuck in CPU work (ms). */
const STALL_MS = 3 * HEARTBEAT_MS;
/**
 * The same for a child whose last report had nothing to do (no request, no connection): no
 * request can be holding it, it beats only every {@link QUIET_HEARTBEAT_MS}, and on a busy
 * machine an idle child's timer can run late by more than {@link STALL_MS}, which made it look
 * stuck beside a child that had just reported before starting CPU work. A connection handed to
 * it and not recorded as received within {@link STALL_MS} makes it stuck all the same.
 */
const IDLE_STALL_MS = 250;
/**
 * How often a child with no connection and no request reports (ms): its next connection is
 * recorded as soon as it arrives, so only a stuck child's silence is measured by this beat; at
 * 20 ms an idle child spent 1.4% of a core on it, at 100 ms a fifth of that.
 */
const QUIET_HEARTBEAT_MS = 100;
/** Connections held while no child is ready (during a restart) before new ones are refused. */
const MAX_WAITING = 1024;

/** The kind of a typhoon message (`"ready"`, `"load"`, `"conn"`), or undefined. */
export function messageKind(message: unknown): string | undefined {
  if (typeof message !== "object" || message === null) return undefined;
  const kind = (message as Record<string, unknown>)[CHILD_MESSAGE];
  return typeof kind === "string" ? kind : undefined;
}

/**
 * What the supervisor knows of a child's load. A report can be older than the last handoff (it
 * was on its way), so connections are counted on both sides: `sent - received` were handed over
 * after the report was written.
 */
export interface ChildLoad {
  /** Connections handed to the child. */
  sent: number;
  /** Connections the child had received when it last reported. */
  received: number;
  /** Open connections at the child's last report. */
  open: number;
  /** Requests in flight at the child's last report. */
  inflight: number;
  /** When the child was last heard from ({@link monotonicMs}). */
  lastHeard: number;
  /** When the oldest connection not yet recorded as received was handed over ({@link monotonicMs}). */
  handedAt?: number;
}

/** A child the handoff can send connections to. */
export interface HandoffTarget extends ChildLoad {
  send(message: unknown, socket: Socket, done: (error: Error | null) => void): void;
  /** Brings the load fields up to date (reads the child's load file) before a pick. */
  refresh?(): void;
}

/** Updates `child` from one of its IPC messages (`ready`, or `load` from a child without a load file); true if it was one. */
export function noteLoad(child: ChildLoad, message: unknown): boolean {
  const kind = messageKind(message);
  if (kind !== "load" && kind !== "ready") return false;
  child.lastHeard = monotonicMs();
  if (kind === "load") {
    const { inflight, open, received } = message as { inflight?: unknown; open?: unknown; received?: unknown };
    if (typeof inflight === "number") child.inflight = inflight;
    if (typeof open === "number") child.open = open;
    if (typeof received === "number") child.received = received;
  }
  return true;
}

/** A directory in memory for load files where the machine has one, else the temporary directory. */
function loadFileDirectory(): string {
  return process.platform === "linux" && existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

let loadFiles = 0;

/**
 * The supervisor's side of one child's load file: opened before the child is forked (its
 * descriptor goes to the child as {@link LOAD_FD}) and removed from the directory at once, so
 * nothing is left behind whatever happens to either process.
 */
export class LoadFile {
  readonly fd: number;
  readonly #record = Buffer.alloc(RECORD_BYTES);
  // Set where the file could not be removed while open (Windows): it is removed at close.
  #path: string | null = null;
  #closed = false;

  constructor() {
    const path = join(loadFileDirectory(), `typhoon-load-${process.pid}-${++loadFiles}`);
    this.fd = openSync(path, "w+", 0o600);
    try {
      unlinkSync(path);
    } catch {
      this.#path = path;
    }
  }

  /** A new load file, or null (the child then reports over IPC) where none can be created. */
  static open(): LoadFile | null {
    try {
      return new LoadFile();
    } catch (err) {
      log.warn(`typhoon: no load file for a child (${String(err)}); it reports its load over IPC`);
      return null;
    }
  }

  /** Updates `child` from the child's last record, if it wrote one (a torn read is read again). */
  read(child: ChildLoad): void {
    if (this.#closed) return;
    const record = this.#record;
    for (let attempt = 0; attempt < 3; attempt++) {
      let length: number;
      try {
        length = readSync(this.fd, record, 0, RECORD_BYTES, 0);
      } catch {
        return; // the pick goes on with what was known
      }
      if (length < RECORD_BYTES) return;
      const seq = record.readUInt32LE(0);
      if (seq === 0 || seq !== record.readUInt32LE(24)) continue;
      child.inflight = record.readUInt32LE(4);
      child.open = record.readUInt32LE(8);
      child.received = record.readUInt32LE(12);
      child.lastHeard = Math.max(child.lastHeard, record.readDoubleLE(16));
      return;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.fd);
    if (this.#path !== null) try { unlinkSync(this.#path); } catch { /* already gone */ }
  }
}

/** A function that reports a child's load: requests in flight, open connections, connections received. */
export type LoadReporter = (inflight: number, open: number, received: number) => void;

/** The child's side: records in the load file its supervisor passed, else IPC messages. */
function loadReporter(): LoadReporter {
  const fd = Number(process.env[LOAD_FD_ENV]);
  if (Number.isInteger(fd) && fd >= 0) return loadFileWriter(fd);
  return (inflight, open, received) => {
    if (process.connected) process.send?.({ [CHILD_MESSAGE]: "load", inflight, open, received });
  };
}

/** Writes each report over the last one in the load file open as `fd` (see {@link LoadFile}). */
export function loadFileWriter(fd: number): LoadReporter {
  const record = Buffer.alloc(RECORD_BYTES);
  let seq = 0;
  let failed = false;
  return (inflight, open, received) => {
    if (failed) return;
    seq = (seq % 0xffff_ffff) + 1;
    record.writeUInt32LE(seq, 0);
    record.writeUInt32LE(inflight, 4);
    record.writeUInt32LE(open, 8);
    record.writeUInt32LE(received, 12);
    record.writeDoubleLE(monotonicMs(), 16);
    record.writeUInt32LE(seq, 24);
    try {
      writeSync(fd, record, 0, RECORD_BYTES, 0);
    } catch (err) {
      // Not the supervisor's file after all: report nothing rather than fail every request.
      failed = true;
      log.error(`typhoon: load reports stop: descriptor ${fd} cannot be written (${String(err)})`);
    }
  };
}

/**
 * The least busy of `children`: first those heard from recently (within {@link STALL_MS}, or
 * {@link IDLE_STALL_MS} for a child that had nothing to do, unless a connection handed to it has
 * waited {@link STALL_MS} to be recorded), then the fewest requests in
 * flight, then the fewest open connections (both counting the connections handed over since
 * the child's last report), then the one heard from last (to 10 ms). Ties go to the first from
 * `start` on, so equal children take turns.
 */
export function pickLeastBusy<T extends ChildLoad>(children: readonly T[], start: number, now = monotonicMs()): T | undefined {
  let best: T | undefined;
  let bestKey: number[] = [Infinity, Infinity, Infinity, Infinity];
  for (let k = 0; k < children.length; k++) {
    const child = children[(start + k) % children.length]!;
    const unreported = child.sent - child.received;
    const silence = now - child.lastHeard;
    const stuck = child.inflight + child.open === 0
      ? silence > IDLE_STALL_MS || (unreported > 0 && now - (child.handedAt ?? child.lastHeard) > STALL_MS)
      : silence > STALL_MS;
    // Silence in 10 ms steps: children heard from about as recently still take turns.
    const key = [stuck ? 1 : 0, child.inflight + unreported, child.open + unreported, Math.floor(silence / 10)];
    if (lessThan(key, bestKey)) {
      best = child;
      bestKey = key;
    }
  }
  return best;
}

function lessThan(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/** The supervisor's side: accepts on the bound address and hands each connection to a child. */
export class Handoff<T extends HandoffTarget> {
  readonly #server = new NetServer({ pauseOnConnect: true, noDelay: true });
  readonly #candidates: () => T[];
  readonly #waiting: Socket[] = [];
  #turn = 0;

  constructor(candidates: () => T[]) {
    this.#candidates = candidates;
    this.#server.on("connection", (socket: Socket) => this.#dispatch(socket, 0));
  }

  /** Binds the address; resolves to the bound port. */
  async listen(address: BindAddress): Promise<number> {
    const options = await listenOptions(address.target, address.host);
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen({ ...options, backlog: 511 }, () => {
        this.#server.off("error", reject);
        this.#server.on("error", (err) => log.error("typhoon: supervisor listening socket failed", err));
        const bound = this.#server.address();
        afterListening(address.target);
        resolve(typeof bound === "object" && bound !== null ? bound.port : 0);
      });
    });
  }

  /** Hands over the connections that waited for a ready child. */
  wake(): void {
    const waiting = this.#waiting.splice(0);
    for (const socket of waiting) if (!socket.destroyed) this.#dispatch(socket, 0);
  }

  /** Stops accepting; connections still waiting for a child are closed. */
  close(): void {
    this.#server.close();
    for (const socket of this.#waiting.splice(0)) socket.destroy();
  }

  #dispatch(socket: Socket, attempt: number): void {
    const candidates = this.#candidates();
    for (const candidate of candidates) candidate.refresh?.();
    const child = pickLeastBusy(candidates, this.#turn++);
    if (child === undefined) {
      if (this.#waiting.length < MAX_WAITING) this.#waiting.push(socket);
      else socket.destroy();
      return;
    }
    if (child.sent === child.received) child.handedAt = monotonicMs();
    child.sent++;
    child.send({ [CHILD_MESSAGE]: "conn" }, socket, (error) => {
      if (error === null) return;
      // The child died between the pick and the send: try another one.
      child.sent--;
      child.lastHeard = -Infinity;
      if (attempt < 3 && !socket.destroyed) this.#dispatch(socket, attempt + 1);
      else socket.destroy();
    });
  }
}

/** A child's intake of handed connections. */
export interface Intake {
  /** Stops taking requests gracefully: resolves when every connection is closed (cut after `timeout` ms). */
  drain(timeout: number): Promise<void>;
}

/** The child's side: serves the connections the supervisor hands over, and reports its load. */
export function acceptHandedConnections(server: ServerHandle): Intake {
  const http = server.unboundServer();
  const sockets = new Set<Socket>();
  let inflight = 0;
  let received = 0;
  // Start and idle reports are throttled by the heartbeat (one of each per beat at most), not by
  // reading the clock: a request then costs a counter, not two clock reads and a listener.
  let startReported = false;
  let idleReported = false;
  const record = loadReporter();
  const report = (): void => record(inflight, sockets.size, received);
  // Every HEARTBEAT_MS, or QUIET_HEARTBEAT_MS while the child has no connection and no request.
  let heartbeat: NodeJS.Timeout;
  let quiet = false;
  const schedule = (): void => {
    heartbeat = setTimeout(beat, quiet ? QUIET_HEARTBEAT_MS : HEARTBEAT_MS);
    heartbeat.unref();
  };
  const beat = (): void => {
    startReported = false;
    idleReported = false;
    report();
    quiet = inflight === 0 && sockets.size === 0;
    schedule();
  };
  const finished = (): void => {
    if (--inflight === 0 && !idleReported) {
      idleReported = true;
      report();
    }
  };
  // Around the app's listener: a request that turns into CPU work must be reported before it
  // starts; and being idle again, so the supervisor can tell this child from a stuck one. A
  // response the app finished synchronously is counted out at once, without a close listener.
  const serve = http.listeners("request") as ((req: IncomingMessage, res: ServerResponse) => void)[];
  http.removeAllListeners("request");
  http.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (++inflight === 1 && !startReported) {
      startReported = true;
      report();
    }
    for (const listener of serve) listener.call(http, req, res);
    if (res.writableEnded) finished();
    else res.once("close", finished);
  });
  process.on("message", (message: unknown, handle: unknown) => {
    if (messageKind(message) !== "conn" || !(handle instanceof Socket)) return;
    received++;
    sockets.add(handle);
    handle.once("close", () => {
      sockets.delete(handle);
      // Nothing left at all: say so now, so the supervisor does not weigh a closed connection
      // until the next beat. Only a child with no connection left reports here: under load, never.
      if (sockets.size === 0 && inflight === 0) report();
    });
    report();
    // A request can only come on a connection: the quiet beat ends with the first one.
    if (quiet) {
      quiet = false;
      clearTimeout(heartbeat);
      schedule();
    }
    http.emit("connection", handle);
  });
  schedule();
  return { drain: (timeout) => drainHanded(server, http, sockets, timeout) };
}
