/**
 * The upgrade seam: how a request that arrived through node:http's `upgrade` event reaches a
 * handler, and how a handler takes the raw socket over. Tornado's `web.py` never imports
 * `websocket.py` (WebSocket works through `detach()`); likewise the application knows only
 * this module, and `handlers/websocket.ts` registers itself here.
 */
import { ServerResponse, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { answerOnSocket } from "../http/respond.ts";

/** The raw socket of an upgrade request and the bytes that came behind its head. */
export interface UpgradeSocket {
  readonly socket: Socket;
  readonly head: Buffer;
}

// Requests that arrived through an `upgrade` event, with the socket a handshake may take over
// and the bytes that came behind the head (the first frames, which must not be lost).
const upgrades = new WeakMap<IncomingMessage, UpgradeSocket>();
// Handler classes (and their subclasses) that perform an upgrade handshake.
const upgradeHandlers = new WeakSet<object>();

/** Declares that `handlerClass` and its subclasses take upgrade requests over (WebSocket). */
export function acceptUpgrades(handlerClass: abstract new (...args: never[]) => unknown): void {
  upgradeHandlers.add(handlerClass);
}

/** Whether `handlerClass` is, or derives from, a class registered with `acceptUpgrades`. */
export function acceptsUpgrades(handlerClass: object): boolean {
  for (let c: object | null = handlerClass; c !== null && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    if (upgradeHandlers.has(c)) return true;
  }
  return false;
}

/** The raw socket of an upgrade request, once: the handshake takes it over. */
export function takeUpgrade(req: IncomingMessage): UpgradeSocket | undefined {
  const upgrade = upgrades.get(req);
  upgrades.delete(req);
  return upgrade;
}

/**
 * The response object of an upgrade request, writing to its raw socket: a handler that
 * rejects the handshake (400, 401, 403 ...) answers through it, and the socket is closed after.
 */
export function upgradeResponse(req: IncomingMessage, socket: Duplex, head: Buffer): ServerResponse {
  const raw = socket as Socket;
  // Frames may follow the handshake at once; nothing reads the socket until `ws` takes it over.
  raw.pause();
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(raw);
  res.once("finish", () => {
    raw.end();
    raw.resume();
  });
  upgrades.set(req, { socket: raw, head });
  return res;
}

/** Answers an upgrade request on the raw socket (no route: 404; not a WebSocket route: 400) and closes it. */
export function rejectUpgrade(socket: Duplex, status: number): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // destroy() once the answer is written: right away it could drop the answer.
  answerOnSocket(socket, status, () => socket.destroy());
}
