/**
 * What `HTTPServer` serves besides a plain listener: an application that registered how it
 * handles requests and upgrades. A registry rather than public methods, so `Application`'s public
 * face stays API.md's and the server layer never imports the web layer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { ServerContext } from "./options.ts";

/** How a registered application serves requests on a server. Internal. */
export interface ServeTarget {
  handle(req: IncomingMessage, res: ServerResponse, server: ServerContext): void;
  /** Serves `Upgrade` requests (WebSocket). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, server: ServerContext): void;
}

const targets = new WeakMap<object, ServeTarget>();

/** Registers how `owner` (an `Application`) is served. */
export function registerServable(owner: object, target: ServeTarget): void {
  targets.set(owner, target);
}

/** How `owner` is served, or `undefined` when it never registered. */
export function serveTargetOf(owner: object): ServeTarget | undefined {
  return targets.get(owner);
}
