// WebSocketHandler over real sockets with the `ws` client: echo of text and binary frames, the
// handshake's checks (origin, prepare(), headers, routes), onClose exactly once however the
// connection ends, the message size limit, and the ping/pong keepalive.
import t from "tap";
import { once } from "node:events";
import { connect } from "node:net";
import WebSocket from "ws";
import { Application } from "../../core/web/app.ts";
import { HTTPError } from "../../core/errors.ts";
import { RequestHandler } from "../../core/web/handler.ts";
import { WebSocketClosedError, WebSocketHandler } from "../../handlers/websocket.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog } from "../helpers/log.ts";
import { within } from "../helpers/wait.ts";
import type { Test } from "tap";

const events: string[] = [];
let lastHandler: EchoHandler | null = null;

class EchoHandler extends WebSocketHandler {
  override open(...args: unknown[]): void {
    lastHandler = this;
    events.push(`open ${JSON.stringify(args)}`);
  }
  override async onMessage(message: string | Buffer): Promise<void> {
    if (message === "close-me") return this.close(4001, "asked");
    if (message === "json") return this.writeMessage({ a: 1, html: "</script>" });
    await this.writeMessage(message, typeof message !== "string");
  }
  override onClose(): void {
    events.push(`close ${this.closeCode}`);
  }
}

class GuardedHandler extends WebSocketHandler {
  override prepare(): void {
    if (this.getArgument("token", "") !== "secret") throw new HTTPError(401);
  }
  override open(): void {
    void this.writeMessage("welcome");
  }
}

class AnyOriginHandler extends EchoHandler {
  override checkOrigin(): boolean {
    return true;
  }
}

const pongs: string[] = [];

class PingingHandler extends WebSocketHandler {
  override onMessage(message: string | Buffer): void {
    if (message === "ping me") this.ping("are you there");
  }
  override onPong(data: Buffer): void {
    pongs.push(data.toString());
    void this.writeMessage(`pong: ${data.toString()}`);
  }
}

class PlainHandler extends RequestHandler {
  get(): void {
    this.write("plain");
  }
}

async function serve(t: Test, settings: Record<string, unknown> = {}): Promise<string> {
  captureLog(t);
  events.length = 0;
  const app = new Application([
    ["/echo/(\\w+)", EchoHandler],
    ["/guarded", GuardedHandler],
    ["/any", AnyOriginHandler],
    ["/plain", PlainHandler],
    ["/pinging", PingingHandler],
  ], settings);
  const { port } = await listen(t, app);
  return `127.0.0.1:${port}`;
}

function client(t: Test, url: string, options: WebSocket.ClientOptions = {}): WebSocket {
  const ws = new WebSocket(url, options);
  t.teardown(() => ws.terminate());
  return ws;
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once("message", (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })));
}

/** The status line a rejected handshake got. */
function rejection(ws: WebSocket): Promise<number> {
  return new Promise((resolve, reject) => {
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once("open", () => reject(new Error("the handshake was accepted")));
    ws.once("error", () => undefined);
  });
}

async function until(predicate: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test("echo: a text frame comes back as text, a binary frame as binary; open gets the path groups", async (t) => {
  const host = await serve(t);
  const ws = client(t, `ws://${host}/echo/room1`);
  await once(ws, "open");
  ws.send("héllo");
  const text = await nextMessage(ws);
  t.equal(text.isBinary, false);
  t.equal(text.data.toString(), "héllo");
  ws.send(Buffer.from([0, 1, 2, 255]));
  const binary = await nextMessage(ws);
  t.equal(binary.isBinary, true);
  t.same([...binary.data], [0, 1, 2, 255]);
  ws.send("json");
  t.same(JSON.parse((await nextMessage(ws)).data.toString()), { a: 1, html: "</script>" }, "objects are sent as JSON");
  t.same(events, ['open ["room1"]']);
  ws.close();
  await once(ws, "close");
});

t.test("a cross-origin handshake is refused with 403; same origin and no Origin are accepted", async (t) => {
  const host = await serve(t);
  t.equal(await rejection(client(t, `ws://${host}/echo/x`, { origin: "http://evil.example" })), 403);
  t.equal(await rejection(client(t, `ws://${host}/echo/x`, { origin: "http://127.0.0.1:1" })), 403, "another port is another origin");
  const same = client(t, `ws://${host}/echo/x`, { origin: `http://${host}` });
  await once(same, "open");
  const none = client(t, `ws://${host}/echo/x`);
  await once(none, "open");
  const allowed = client(t, `ws://${host}/any`, { origin: "http://evil.example" });
  await once(allowed, "open");
  t.pass("checkOrigin can be overridden");
  for (const ws of [same, none, allowed]) ws.close();
});

t.test("prepare() can reject the handshake (401) before any upgrade", async (t) => {
  const host = await serve(t);
  t.equal(await rejection(client(t, `ws://${host}/guarded`)), 401);
  const ok = client(t, `ws://${host}/guarded?token=secret`);
  t.equal((await nextMessage(ok)).data.toString(), "welcome");
  ok.close();
});

t.test("an upgrade to no route is a 404, to a non-WebSocket route a 400, both on the raw socket", async (t) => {
  const host = await serve(t);
  t.equal(await rejection(client(t, `ws://${host}/nowhere`)), 404);
  t.equal(await rejection(client(t, `ws://${host}/plain`)), 400);
  const res = await fetch(`http://${host}/echo/x`);
  t.equal(res.status, 400, "a plain GET to a WebSocket route is a 400");
});

t.test("onClose runs exactly once: client close, server close, abrupt disconnect", async (t) => {
  const host = await serve(t);
  const a = client(t, `ws://${host}/echo/a`);
  await once(a, "open");
  a.close(1000, "bye");
  await until(() => events.includes("close 1000"));

  const b = client(t, `ws://${host}/echo/b`);
  await once(b, "open");
  b.send("close-me");
  const [code, reason] = (await once(b, "close")) as [number, Buffer];
  t.equal(code, 4001, "close(code) reaches the client");
  t.equal(reason.toString(), "asked");
  await until(() => events.includes("close 4001"));

  const c = client(t, `ws://${host}/echo/c`);
  await once(c, "open");
  const handler = lastHandler!;
  c.terminate();
  await until(() => events.includes("close 1006"));
  await new Promise((r) => setTimeout(r, 50));
  t.same(events.filter((e) => e.startsWith("close")), ["close 1000", "close 4001", "close 1006"], "one onClose per connection");
  await t.rejects(handler.writeMessage("late"), WebSocketClosedError, "writeMessage after close rejects");
  handler.close();
  t.pass("close() after close does nothing");
});

t.test("a message over websocketMaxMessageSize closes the connection with 1009", async (t) => {
  const host = await serve(t, { websocketMaxMessageSize: 1024 });
  const ws = client(t, `ws://${host}/echo/big`);
  await once(ws, "open");
  ws.send("x".repeat(1000));
  t.equal((await nextMessage(ws)).data.length, 1000, "under the limit is echoed");
  ws.send("x".repeat(2000));
  const [code] = (await once(ws, "close")) as [number];
  t.equal(code, 1009);
});

t.test("keepalive: pings at websocketPingInterval; a peer that never pongs is closed after websocketPingTimeout", async (t) => {
  const host = await serve(t, { websocketPingInterval: 50, websocketPingTimeout: 150 });
  const live = client(t, `ws://${host}/echo/live`);
  let pings = 0;
  live.on("ping", () => pings++);
  await once(live, "open");
  const mute = client(t, `ws://${host}/echo/mute`, { autoPong: false });
  await once(mute, "open");
  const started = Date.now();
  await once(mute, "close");
  t.ok(Date.now() - started >= 100, "not closed before the timeout");
  // Counted as they come rather than at a fixed moment: a loaded machine delays pings, not their number.
  await until(() => pings >= 2, 10_000).catch(() => undefined);
  t.ok(pings >= 2, `the live client got ${pings} pings`);
  t.equal(live.readyState, WebSocket.OPEN, "a client that answers pings stays open");
  live.close();
});

t.test("bytes sent right behind the handshake are not lost", async (t) => {
  const host = await serve(t);
  const [hostname, port] = host.split(":");
  const socket = connect(Number(port), hostname);
  t.teardown(() => socket.destroy());
  await once(socket, "connect");
  // A masked text frame "hi" (RFC 6455 §5.3) in the same packet as the handshake.
  const mask = Buffer.from([1, 2, 3, 4]);
  const payload = Buffer.from("hi").map((b, i) => b ^ mask[i % 4]!);
  socket.write(Buffer.concat([
    Buffer.from(`GET /echo/raw HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
    Buffer.from([0x81, 0x80 | 2]), mask, payload,
  ]));
  let received = Buffer.alloc(0);
  await until(() => {
    const chunk = socket.read() as Buffer | null;
    if (chunk !== null) received = Buffer.concat([received, chunk]);
    return received.includes(Buffer.from([0x81, 2, 0x68, 0x69]));
  });
  t.match(received.toString("latin1"), /^HTTP\/1\.1 101 /);
});

t.test("HTTPServer.stop() closes open WebSockets with 1001 and resolves", async (t) => {
  captureLog(t);
  const app = new Application([["/echo/(\\w+)", EchoHandler]]);
  const { port, server } = await listen(t, app);
  const ws = client(t, `ws://127.0.0.1:${port}/echo/drain`);
  await once(ws, "open");
  const closed = once(ws, "close") as Promise<[number, Buffer]>;
  // A cut-off far beyond any load-induced delay: if stop() waited for it, the bound below
  // (a third of it) would expire first.
  const cutoff = 60_000;
  const started = performance.now();
  const stopped = server.stop(cutoff).then(() => "stopped" as const);
  const [code] = await closed;
  t.equal(code, 1001, "going away");
  let bound: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([stopped, new Promise<"cut-off">((resolve) => { bound = setTimeout(() => resolve("cut-off"), cutoff / 3); })]);
  clearTimeout(bound);
  t.equal(outcome, "stopped", `stop() resolved long before its ${cutoff} ms cut-off (${outcome} after ${Math.round(performance.now() - started)} ms)`);
});

t.test("an h2c upgrade (curl --http2) to an ordinary route is ignored: answered over HTTP/1.1, body read, connection kept", async (t) => {
  const host = await serve(t);
  const [hostname, port] = host.split(":");
  const send = async (request: string): Promise<string> => {
    const socket = connect(Number(port), hostname);
    t.teardown(() => socket.destroy());
    let received = "";
    socket.on("data", (d: Buffer) => { received += d.toString("latin1"); });
    // A second request with `Connection: close` on the same socket: the connection stayed usable.
    socket.write(`${request}GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    await once(socket, "close");
    return received;
  };
  const get = await send("GET /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n");
  t.match(get, /^HTTP\/1\.1 200 OK/);
  t.equal(get.match(/HTTP\/1\.1 200 OK/g)?.length, 2, "both requests answered on one connection");
  const post = await send("POST /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\nhello");
  t.match(post, /^HTTP\/1\.1 405 /, "the POST is served (405: /plain has no post()), its body read");
  t.match(post, /HTTP\/1\.1 200 OK[\s\S]*plain$/, "and the next request after it");
});

t.test("ping(): the client sees a ping with its data, and the pong comes back to onPong", async (t) => {
  const host = await serve(t);
  pongs.length = 0;
  const ws = client(t, `ws://${host}/pinging`);
  await once(ws, "open");
  const ping = once(ws, "ping") as Promise<[Buffer]>;
  const reply = nextMessage(ws);
  ws.send("ping me");
  const [data] = await within(ping, "a ping");
  t.equal(data.toString(), "are you there", "a ping frame with the data given to ping()");
  t.equal((await within(reply, "the pong's echo")).data.toString(), "pong: are you there", "ws answered it and onPong got the data");
  t.same(pongs, ["are you there"]);
});
