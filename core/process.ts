/**
 * Processes: `cpuCount`, `taskId`, and `startServer`, the body of `HTTPServer.start(n)`.
 * (Single-process serving for now; the multi-process supervisor lands with the processes issue.)
 */
import { availableParallelism } from "node:os";
import { ErrorCode, TyphoonError } from "./errors.ts";
import type { BindAddress, HTTPServer } from "./httpserver.ts";

/** Options of `HTTPServer.start()`. */
export interface StartOptions {
  /** Restarts allowed in total before the supervisor gives up (default 100). */
  maxRestarts?: number;
}

/** The number of processors available to this process. */
export function cpuCount(): number {
  return availableParallelism();
}

/** This child's index `0..n-1`, or `null` in a single process or the supervisor. */
export function taskId(): number | null {
  return null;
}

/** Serves `server` on `address` in `numProcesses` processes. */
export async function startServer(server: HTTPServer, address: BindAddress, numProcesses = 1, _options: StartOptions = {}): Promise<void> {
  if (numProcesses !== 1) throw new TyphoonError(ErrorCode.INVALID_OPTION, "start(n > 1) is not available yet");
  await server.listen(address.port, address.host);
}
