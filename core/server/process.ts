/**
 * Processes: `cpuCount`, `taskId`, `isDraining`, `forkProcesses`, and `startServer` (the body of
 * `HTTPServer.start(n)`). One process serves by itself; several make the calling process a
 * supervisor (`supervisor.ts`) of children that run the same script. Also the signal behaviour
 * of a serving process: SIGTERM/SIGINT drain the servers and exit 0.
 */
import cluster from "node:cluster";
import { availableParallelism } from "node:os";
import { drainListening } from "./drain.ts";
import { ErrorCode, TyphoonError } from "../errors.ts";
import { acceptHandedConnections, CHILD_MESSAGE } from "./handoff.ts";
import type { BindAddress, HTTPServer } from "./httpserver.ts";
import { log } from "../log.ts";
import { DEFAULTS } from "./options.ts";
import { CHILD_ENV, Supervisor } from "./supervisor.ts";

/**
 * How the children of `start(n)` share incoming connections.
 *
 * - `"least-busy"` (default): the supervisor accepts each connection and hands it to the child
 *   whose event loop answered most recently and has the fewest requests in flight, so a child
 *   stuck in CPU work gets no new connections.
 * - `"round-robin"`: Node's cluster default (`SCHED_RR`): the supervisor hands connections to
 *   the children in turn, busy or not.
 * - `"shared"`: Node's `SCHED_NONE`: every child accepts on the shared socket; only a free child
 *   accepts, but the kernel spreads connections unevenly.
 */
export type Scheduling = "least-busy" | "round-robin" | "shared";

const SCHEDULINGS: readonly Scheduling[] = ["least-busy", "round-robin", "shared"];

/** Options of `HTTPServer.start()`. */
export interface StartOptions {
  /** Restarts allowed in total before the supervisor gives up (default 100). */
  maxRestarts?: number;
  /** How children share connections (default: `TYPHOON_SCHEDULING` from the environment, else `"least-busy"`). */
  scheduling?: Scheduling;
}

/** Options of {@link forkProcesses}. */
export interface ForkOptions {
  /** Restarts allowed in total before the supervisor gives up (default 100). */
  maxRestarts?: number;
  /** Node's cluster scheduling for servers the children open (default `"round-robin"`). */
  scheduling?: Exclude<Scheduling, "least-busy">;
  /** Grace period given to children to drain on SIGTERM/SIGHUP before they are killed (default 30 s). */
  drainTimeout?: number;
}

/** The number of processors available to this process. */
export function cpuCount(): number {
  return availableParallelism();
}

/** This child's index `0..n-1` (stable across restarts), or `null` in a single process or the supervisor. */
export function taskId(): number | null {
  if (!cluster.isWorker) return null;
  const raw = process.env[CHILD_ENV.taskId];
  return raw === undefined || raw === "" ? null : Number(raw);
}

let draining = false;

/** Whether this process is draining after SIGTERM/SIGINT (for health checks: answer 503). */
export function isDraining(): boolean {
  return draining;
}

/**
 * Forks `numProcesses` children (0 or undefined: one per CPU) that run this same script, and
 * supervises them (Tornado's `fork_processes`). In a child it resolves to the child's task id
 * at once. In the supervisor it never resolves: the supervisor restarts children that fail
 * (see `HTTPServer.start`) and exits the process when all children are gone, so the code after
 * `await forkProcesses(n)` runs only in children. Servers the children open share their port
 * through Node's cluster (`scheduling`, round-robin by default).
 *
 * @example
 * const id = await forkProcesses(4);       // from here on, in a child only
 * await new HTTPServer(app).listen(8888);  // every child shares port 8888
 */
export async function forkProcesses(numProcesses?: number, options: ForkOptions = {}): Promise<number> {
  const id = taskId();
  if (id !== null) {
    process.send?.({ [CHILD_MESSAGE]: "ready" });
    watchSignalsAsChild();
    return id;
  }
  const fromEnv = process.env[CHILD_ENV.scheduling];
  const scheduling = resolveScheduling(options.scheduling ?? (fromEnv === "shared" ? "shared" : "round-robin"));
  if (scheduling === "least-busy") throw new TyphoonError(ErrorCode.PROCESS_OPTION, "forkProcesses: least-busy scheduling needs HTTPServer.start()");
  const supervisor = new Supervisor({
    count: processCount(numProcesses),
    maxRestarts: restartLimit(options.maxRestarts),
    scheduling,
    drainTimeout: options.drainTimeout ?? DEFAULTS.drainTimeout,
    address: null,
  });
  await supervisor.start();
  return new Promise<number>(() => {});
}

/**
 * The body of `HTTPServer.start(n)`: in a child (or with `n` = 1) serves `server` on `address`
 * in this process; otherwise this process becomes the supervisor of `n` children and resolves
 * once every child is serving.
 */
export async function startServer(server: HTTPServer, address: BindAddress, numProcesses?: number, options: StartOptions = {}): Promise<void> {
  const id = taskId();
  const count = processCount(numProcesses);
  if (id !== null) return serveChild(server, address);
  // A worker of a cluster the app runs itself: that cluster's primary shares the port.
  if (cluster.isWorker) return server.listen(address.port, address.host);
  const scheduling = resolveScheduling(options.scheduling);
  const maxRestarts = restartLimit(options.maxRestarts);
  if (count === 1) return server.listen(address.port, address.host);
  const supervisor = new Supervisor({
    count, maxRestarts, scheduling, address,
    drainTimeout: server.options.drainTimeout ?? DEFAULTS.drainTimeout,
  });
  await supervisor.start();
}

/** Serves in a child of `start(n)`, then tells the supervisor it is ready. */
async function serveChild(server: HTTPServer, address: BindAddress): Promise<void> {
  const scheduling = resolveScheduling(process.env[CHILD_ENV.scheduling] as Scheduling | undefined);
  if (scheduling === "least-busy") {
    const intake = acceptHandedConnections(server);
    watchSignalsAsChild();
    onDrain(() => intake.drain(server.options.drainTimeout ?? DEFAULTS.drainTimeout));
  } else {
    await server.listen(address.port, address.host); // Node's cluster shares the port
    watchSignalsAsChild();
  }
  process.send?.({ [CHILD_MESSAGE]: "ready" });
}

/**
 * Drains `server` on SIGTERM/SIGINT and then exits 0 (called by `HTTPServer.listen`). A second
 * signal in a single process exits at once with status 1.
 */
export function drainOnSignals(server: HTTPServer): void {
  onDrain(() => drainListening(server, server.options.drainTimeout ?? DEFAULTS.drainTimeout), server);
  watchSignals();
}

/** What to drain on a signal; a server that stopped listening is dropped, so specs do not pile them up. */
const drains = new Map<() => Promise<void>, HTTPServer | null>();
let watching = false;
let asChild = false;

function onDrain(drain: () => Promise<void>, server: HTTPServer | null = null): void {
  for (const [fn, owner] of drains) if (owner !== null && owner.httpServer?.listening !== true) drains.delete(fn);
  drains.set(drain, server);
}

function watchSignals(): void {
  if (watching) return;
  watching = true;
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

/** In a child the supervisor decides: repeated signals are ignored, SIGHUP (a terminal closing) too. */
function watchSignalsAsChild(): void {
  asChild = true;
  watchSignals();
  process.on("SIGHUP", () => {});
}

function shutdown(signal: NodeJS.Signals): void {
  if (draining) {
    if (asChild) return;
    log.warn(`typhoon: ${signal} again, exiting without draining`);
    process.exit(1);
  }
  draining = true;
  log.info(`typhoon: ${signal}: draining (pid ${process.pid})`);
  void Promise.allSettled([...drains.keys()].map((drain) => drain())).then(() => process.exit(0));
}

function processCount(n: number | undefined): number {
  if (n === undefined || n === 0) return cpuCount();
  if (!Number.isInteger(n) || n < 0) throw new TyphoonError(ErrorCode.PROCESS_OPTION, `Invalid number of processes ${String(n)}`);
  return n;
}

function restartLimit(n: number | undefined): number {
  if (n === undefined) return 100;
  if (!Number.isInteger(n) || n < 0) throw new TyphoonError(ErrorCode.PROCESS_OPTION, `maxRestarts must be an integer ≥ 0, got ${String(n)}`);
  return n;
}

/** The explicit option, else `TYPHOON_SCHEDULING`, else least-busy. */
function resolveScheduling(option: Scheduling | undefined): Scheduling {
  const chosen = option ?? process.env[CHILD_ENV.scheduling] ?? "least-busy";
  if (!(SCHEDULINGS as readonly string[]).includes(chosen)) {
    throw new TyphoonError(ErrorCode.PROCESS_OPTION, `scheduling must be one of ${SCHEDULINGS.join(", ")}, got ${chosen}`);
  }
  return chosen as Scheduling;
}
