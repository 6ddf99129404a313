/**
 * Where a server listens: a TCP port, a Unix socket (`{ path }`: a stale socket file left by a
 * dead process is replaced; `socketMode` sets its permissions), or an inherited descriptor that
 * is already listening (`{ fd }`; systemd's socket activation through {@link listenFromEnvironment}).
 * Also `SO_REUSEPORT` for `start(n, { scheduling: "reuseport" })`, where Node has it.
 */
import cluster from "node:cluster";
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { connect, type ListenOptions, type Server } from "node:net";
import { ErrorCode, TyphoonError } from "../errors.ts";

/** A Unix-domain socket to listen on. */
export interface UnixSocketTarget {
  readonly path: string;
  /** Permissions of the socket file (e.g. `0o660` so nginx in the same group can connect). */
  readonly socketMode?: number;
}

/** An inherited descriptor that is already bound and listening (systemd, a supervisor). */
export interface FdTarget {
  readonly fd: number;
}

/** What `listen()` and `bind()` take: a port, a Unix socket, or an inherited descriptor. */
export type ListenTarget = number | UnixSocketTarget | FdTarget;

/** The first descriptor systemd passes (`SD_LISTEN_FDS_START`). */
const SD_LISTEN_FDS_START = 3;

/** Throws a clear error for a target that cannot be listened on. */
export function checkTarget(target: ListenTarget): void {
  if (typeof target === "number") {
    if (!Number.isInteger(target) || target < 0 || target > 65535) {
      throw new TyphoonError(ErrorCode.SERVER_OPTION, `Invalid port ${String(target)}`);
    }
    return;
  }
  if (typeof target !== "object" || target === null) {
    throw new TyphoonError(ErrorCode.SERVER_OPTION, `listen() takes a port, { path } or { fd }, got ${String(target)}`);
  }
  if ("path" in target) {
    if (typeof target.path !== "string" || target.path === "") throw new TyphoonError(ErrorCode.SERVER_OPTION, "listen({ path }): the path must be a non-empty string");
    const mode = target.socketMode;
    if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o777)) {
      throw new TyphoonError(ErrorCode.SERVER_OPTION, `socketMode must be a file mode like 0o660, got ${String(mode)}`);
    }
    return;
  }
  if (!("fd" in target) || !Number.isInteger(target.fd) || target.fd < 0) {
    throw new TyphoonError(ErrorCode.SERVER_OPTION, `listen({ fd }): the descriptor must be an integer ≥ 0, got ${String((target as { fd?: unknown }).fd)}`);
  }
}

/** A target for log lines and errors: `port 8888`, `unix:/run/app.sock`, `fd 3`. */
export function describeTarget(target: ListenTarget, host?: string): string {
  if (typeof target === "number") return host === undefined ? `port ${target}` : `${host}:${target}`;
  return "path" in target ? `unix:${target.path}` : `fd ${target.fd}`;
}

/**
 * Node's listen options for a target. A Unix socket path is made ready first: a stale socket
 * file (nothing accepts on it) is removed; a live one is an error, as is a path that is not a socket.
 */
export async function listenOptions(target: ListenTarget, host: string | undefined, extra: { reusePort?: boolean } = {}): Promise<ListenOptions> {
  checkTarget(target);
  if (typeof target === "number") {
    if (extra.reusePort === true) {
      checkReusePort();
      // `exclusive`: in a cluster child, open this process's own socket instead of asking the
      // primary for a shared one, which is the point of SO_REUSEPORT.
      return { port: target, host, exclusive: true, reusePort: true } as ListenOptions;
    }
    return { port: target, host, exclusive: false };
  }
  if ("path" in target) {
    // In a cluster worker the primary holds the shared socket: the file is live, not stale.
    if (!cluster.isWorker) await removeStaleSocket(target.path);
    return { path: target.path };
  }
  return { fd: target.fd } as ListenOptions;
}

/** After listening: applies `socketMode` to a Unix socket file. */
export function afterListening(target: ListenTarget): void {
  if (typeof target === "object" && "path" in target && target.socketMode !== undefined) chmodSync(target.path, target.socketMode);
}

/** Listens `server` on `target`; resolves once listening. */
export async function listenOn(server: Server, target: ListenTarget, host: string | undefined, extra: { reusePort?: boolean; backlog?: number } = {}): Promise<void> {
  const options = await listenOptions(target, host, extra);
  if (extra.backlog !== undefined) options.backlog = extra.backlog;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options, () => {
      server.off("error", reject);
      resolve();
    });
  });
  afterListening(target);
}

/**
 * The listening socket systemd passed to this process (socket activation), or `null`: honours
 * `LISTEN_PID` (must be this process) and `LISTEN_FDS` (the first descriptor, 3, is used), then
 * removes both from the environment so children of this process do not take them for theirs.
 *
 * @example
 * await server.listen(listenFromEnvironment() ?? 8888);
 */
export function listenFromEnvironment(env: NodeJS.ProcessEnv = process.env): FdTarget | null {
  const pid = env["LISTEN_PID"];
  const fds = Number(env["LISTEN_FDS"]);
  if (pid === undefined || Number(pid) !== process.pid || !Number.isInteger(fds) || fds < 1) return null;
  delete env["LISTEN_PID"];
  delete env["LISTEN_FDS"];
  delete env["LISTEN_FDNAMES"];
  return { fd: SD_LISTEN_FDS_START };
}

/** Whether this Node has `reusePort` in `server.listen()` (22.12+, 23.1+). */
export function reusePortSupported(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major >= 24 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** Throws the clear error of a Node without `reusePort`. */
export function checkReusePort(): void {
  if (!reusePortSupported()) {
    throw new TyphoonError(ErrorCode.UNSUPPORTED,
      `scheduling "reuseport" needs Node 22.12+ (server.listen's reusePort option); this is Node ${process.versions.node}. `
      + `Use the default "least-busy" scheduling, or run one single-process instance per port behind a balancer.`);
  }
}

async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new TyphoonError(ErrorCode.SERVER_OPTION, `listen({ path }): ${path} exists and is not a socket; not replacing it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect({ path });
    probe.once("connect", () => { probe.destroy(); resolve(true); });
    probe.once("error", () => resolve(false));
  });
  if (live) throw new TyphoonError(ErrorCode.SERVER_OPTION, `listen({ path }): another process is listening on ${path}`);
  unlinkSync(path);
}
