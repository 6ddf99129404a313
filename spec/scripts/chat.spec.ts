// The chat example, started in-process: the page (cached messages, XSRF form, versioned
// assets), the WebSocket broadcast to every client with HTML escaped, bad input ignored.
import t from "tap";
import { once } from "node:events";
import WebSocket from "ws";
import { ChatRoom, MAX_MESSAGE_LENGTH, createChatApp, type ChatMessage } from "../../scripts/chat/chat.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog } from "../helpers/log.ts";
import type { Test } from "tap";

async function start(t: Test, room = new ChatRoom()): Promise<{ host: string; room: ChatRoom }> {
  captureLog(t);
  const { app } = createChatApp({ cookieSecret: "spec-secret", room });
  const { port } = await listen(t, app);
  return { host: `127.0.0.1:${port}`, room };
}

async function join(t: Test, host: string, room: ChatRoom): Promise<WebSocket> {
  const before = room.waiters.size;
  const ws = new WebSocket(`ws://${host}/chatsocket`, { origin: `http://${host}` });
  t.teardown(() => ws.terminate());
  await once(ws, "open");
  // The socket is a waiter once open() has run on the server.
  const end = Date.now() + 10_000;
  while (room.waiters.size === before && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return ws;
}

function next(ws: WebSocket): Promise<ChatMessage> {
  return new Promise((resolve) => ws.once("message", (data: Buffer) => resolve(JSON.parse(data.toString()) as ChatMessage)));
}

t.test("the page serves the form with an XSRF field and versioned assets that load", async (t) => {
  const { host } = await start(t);
  const res = await fetch(`http://${host}/`);
  t.equal(res.status, 200);
  const html = await res.text();
  t.match(html, /<input type="hidden" name="_xsrf" value="2\|/);
  const script = /src="([^"]+)"/.exec(html)?.[1];
  t.match(script, /^\/static\/chat\.js\?v=[0-9a-f]{32}$/);
  const js = await fetch(`http://${host}${script!}`);
  t.equal(js.status, 200);
  t.match(js.headers.get("cache-control"), /max-age=315360000/);
  t.match(await js.text(), /new WebSocket/);
});

t.test("a message from one client reaches every client, escaped, and appears on the page afterwards", async (t) => {
  const { host, room } = await start(t);
  const alice = await join(t, host, room);
  const bob = await join(t, host, room);
  const [toAlice, toBob] = [next(alice), next(bob)];
  alice.send(JSON.stringify({ body: "<b>hi</b> & bye" }));
  const [a, b] = await Promise.all([toAlice, toBob]);
  t.equal(a.body, "<b>hi</b> & bye");
  t.equal(a.id, b.id, "both got the same message");
  t.match(a.html, /&lt;b&gt;hi&lt;\/b&gt; &amp; bye/);
  t.notMatch(a.html, /<b>/, "no markup from the sender");
  const page = await (await fetch(`http://${host}/`)).text();
  t.match(page, new RegExp(`id="m${a.id}"`), "the page shows the cached message");
});

t.test("invalid JSON, binary frames and empty bodies are ignored; long bodies are cut", async (t) => {
  const { host, room } = await start(t);
  const carol = await join(t, host, room);
  const received: ChatMessage[] = [];
  carol.on("message", (d: Buffer) => received.push(JSON.parse(d.toString()) as ChatMessage));
  carol.send("not json");
  carol.send(Buffer.from([1, 2, 3]));
  carol.send(JSON.stringify({ body: "   " }));
  carol.send(JSON.stringify({ nobody: 1 }));
  carol.send(JSON.stringify({ body: "x".repeat(MAX_MESSAGE_LENGTH + 50) }));
  carol.send(JSON.stringify({ body: "last" }));
  const end = Date.now() + 10_000;
  while (received.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  t.same(received.map((m) => m.body.length), [MAX_MESSAGE_LENGTH, 4]);
  t.equal(room.cache.length, 2);
});

t.test("closed sockets leave the room; the cache keeps only the last cacheSize messages", async (t) => {
  const { host, room } = await start(t, new ChatRoom(3));
  const dave = await join(t, host, room);
  t.equal(room.waiters.size, 1);
  dave.close();
  const end = Date.now() + 10_000;
  while (room.waiters.size > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  t.equal(room.waiters.size, 0);
  for (const body of ["1", "2", "3", "4", "5"]) room.broadcast(body);
  t.same(room.cache.map((m) => m.body), ["3", "4", "5"]);
});

t.test("without JavaScript the form posts the message (XSRF-checked) and is redirected to the page", async (t) => {
  const { host, room } = await start(t);
  const listener = await join(t, host, room);
  const page = await fetch(`http://${host}/`);
  const cookie = page.headers.get("set-cookie")!.split(";")[0]!;
  const token = /name="_xsrf" value="([^"]+)"/.exec(await page.text())![1]!;
  const headers = { "Content-Type": "application/x-www-form-urlencoded", Cookie: cookie };
  const forged = await fetch(`http://${host}/a/message/new`, { method: "POST", headers, body: "body=spam", redirect: "manual" });
  t.equal(forged.status, 403, "no token, no message");
  const heard = next(listener);
  const posted = await fetch(`http://${host}/a/message/new`, {
    method: "POST", headers, body: `body=from+a+form&_xsrf=${encodeURIComponent(token)}`, redirect: "manual",
  });
  t.equal(posted.status, 302);
  t.equal(posted.headers.get("location"), "/");
  t.equal((await heard).body, "from a form");
  t.same(room.cache.map((m) => m.body), ["from a form"]);
});

t.test("a cross-site page cannot open the chat socket", async (t) => {
  const { host } = await start(t);
  const ws = new WebSocket(`ws://${host}/chatsocket`, { origin: "http://evil.example" });
  t.teardown(() => ws.terminate());
  const status = await new Promise<number>((resolve) => {
    ws.once("unexpected-response", (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); });
    ws.once("open", () => resolve(101));
    ws.once("error", () => undefined);
  });
  t.equal(status, 403);
});
