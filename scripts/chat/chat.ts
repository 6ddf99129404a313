/**
 * The chat example: Tornado's WebSocket chat demo (`demos/websocket/chatdemo.py`) on typhoon.
 * One page (with the last messages, an XSRF-protected form and a versioned script URL), one
 * WebSocket endpoint that broadcasts every message to every open socket, the form's POST
 * target for browsers without JavaScript, and a bounded cache.
 */
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";
import { Application } from "../../core/web/app.ts";
import { RequestHandler } from "../../core/web/handler.ts";
import { escapeHtml } from "../../core/http/error-page.ts";
import { WebSocketHandler } from "../../handlers/websocket.ts";

/** One chat message as broadcast: its id, text, and the HTML the page inserts. */
export interface ChatMessage {
  readonly id: string;
  readonly body: string;
  readonly html: string;
}

/** The room: who is listening and the last messages (Tornado's `waiters` and `cache`). */
export class ChatRoom {
  readonly waiters = new Set<ChatSocketHandler>();
  readonly cache: ChatMessage[] = [];
  readonly cacheSize: number;

  constructor(cacheSize = 200) {
    this.cacheSize = cacheSize;
  }

  /** Stores a message and sends it to every open socket. */
  broadcast(body: string): ChatMessage {
    const id = randomUUID();
    const message = { id, body, html: `<div class="message" id="m${id}">${escapeHtml(body)}</div>` };
    this.cache.push(message);
    if (this.cache.length > this.cacheSize) this.cache.splice(0, this.cache.length - this.cacheSize);
    for (const waiter of this.waiters) {
      // A socket closing meanwhile is not an error for the others.
      waiter.writeMessage(message).catch(() => undefined);
    }
    return message;
  }
}

/** The longest message kept, in characters. */
export const MAX_MESSAGE_LENGTH = 2000;

class MainHandler extends RequestHandler {
  #room!: ChatRoom;

  override initialize(args?: unknown): void {
    this.#room = (args as { room: ChatRoom }).room;
  }

  get(): void {
    const messages = this.#room.cache.map((m) => m.html).join("\n");
    this.write(`<!DOCTYPE html>
<html><head><meta charset="UTF-8"><title>typhoon chat</title>
<link rel="stylesheet" href="${escapeHtml(this.staticUrl("chat.css"))}"></head>
<body><div id="body"><div id="inbox">${messages}</div>
<div id="input"><form action="/a/message/new" method="post" id="messageform">
<input type="text" name="body" id="message" autocomplete="off" maxlength="${MAX_MESSAGE_LENGTH}">
<input type="submit" value="Post">${this.xsrfFormHtml()}</form></div></div>
<script src="${escapeHtml(this.staticUrl("chat.js"))}"></script></body></html>`);
  }
}

// Without JavaScript the form posts here (XSRF-checked); the page then shows the message.
class MessageNewHandler extends RequestHandler {
  #room!: ChatRoom;

  override initialize(args?: unknown): void {
    this.#room = (args as { room: ChatRoom }).room;
  }

  post(): void {
    const body = this.getArgument("body", "");
    if (body.trim() !== "") this.#room.broadcast(body.slice(0, MAX_MESSAGE_LENGTH));
    this.redirect("/");
  }
}

/** The chat WebSocket: each text message `{"body": "..."}` is broadcast to the room. */
export class ChatSocketHandler extends WebSocketHandler {
  #room!: ChatRoom;

  override initialize(args?: unknown): void {
    this.#room = (args as { room: ChatRoom }).room;
  }

  override open(): void {
    this.#room.waiters.add(this);
  }

  override onMessage(message: string | Buffer): void {
    if (typeof message !== "string") return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    const body = (parsed as { body?: unknown } | null)?.body;
    if (typeof body !== "string" || body.trim() === "") return;
    this.#room.broadcast(body.slice(0, MAX_MESSAGE_LENGTH));
  }

  override onClose(): void {
    this.#room.waiters.delete(this);
  }
}

/**
 * The chat application and its room.
 *
 * @example
 * const { app } = createChatApp({ cookieSecret: "change me" });
 * await app.listen(8888);
 */
export function createChatApp(options: { cookieSecret?: string; room?: ChatRoom } = {}): { app: Application; room: ChatRoom } {
  const room = options.room ?? new ChatRoom();
  const app = new Application([
    ["/", MainHandler, { room }],
    ["/a/message/new", MessageNewHandler, { room }],
    ["/chatsocket", ChatSocketHandler, { room }],
  ], {
    cookieSecret: options.cookieSecret ?? "__TODO:_GENERATE_YOUR_OWN_RANDOM_VALUE_HERE__",
    staticPath: fileURLToPath(new URL("./static/", import.meta.url)),
    xsrfCookies: true,
    compressResponse: true,
    websocketPingInterval: 30_000,
  });
  return { app, room };
}
