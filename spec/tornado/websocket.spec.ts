// Cases ported from Tornado's tornado/test/websocket_test.py, each named after the Tornado test
// it comes from, run with the `ws` client over real sockets: the handshake's checks (426 for a
// bad version, headers from setDefaultHeaders()/prepare() on the 101), HTTP output refused once
// open, subprotocols, permessage-deflate only when asked, on_ping, pings without a timeout, and
// the 1009 close reason.
import t from "tap";
import { once } from "node:events";
import WebSocket from "ws";
import { Application, RequestHandler, WebSocketClosedError, WebSocketHandler } from "../../core/index.ts";
import { exchange } from "../helpers/raw-http.ts";
import { expectLog, serve, type Served } from "../helpers/tornado.ts";
import type { Test } from "tap";

class EchoHandler extends WebSocketHandler {
  override async onMessage(message: string | Buffer): Promise<void> {
    try {
      await this.writeMessage(message, typeof message !== "string");
    } catch (err) {
      if (!(err instanceof WebSocketClosedError)) throw err;
    }
  }
}

class HeaderHandler extends WebSocketHandler {
  override open(): void {
    const attempts: [string, () => unknown][] = [
      ["write", () => this.write("This should not work")],
      ["redirect", () => this.redirect("http://localhost/elsewhere")],
      ["setHeader", () => this.setHeader("X-Test", "")],
      ["setCookie", () => this.setCookie("Chocolate", "Chip")],
      ["setStatus", () => this.setStatus(503)],
      ["flush", () => this.flush()],
      ["finish", () => this.finish()],
    ];
    const allowed = attempts.filter(([, attempt]) => {
      try {
        attempt();
        return true;
      } catch {
        return false;
      }
    }).map(([name]) => name);
    void this.writeMessage(allowed.length === 0 ? String(this.request.headers["x-test"] ?? "") : `allowed: ${allowed.join(",")}`);
  }
}

class HeaderEchoHandler extends WebSocketHandler {
  override setDefaultHeaders(): void {
    this.setHeader("X-Extra-Response-Header", "Extra-Response-Value");
  }
  override prepare(): void {
    for (const [name, value] of Object.entries(this.request.headers)) {
      if (name.startsWith("x-test") && typeof value === "string") this.setHeader(name, value);
    }
  }
}

let selectCalls = 0;
class SubprotocolHandler extends WebSocketHandler {
  override selectSubprotocol(protocols: string[]): string | null {
    selectCalls++;
    return protocols.includes("goodproto") ? "goodproto" : null;
  }
  override open(): void {
    void this.writeMessage(`subprotocol=${String(this.selectedSubprotocol)}`);
  }
}

class CompressedEcho extends EchoHandler {
  override getCompressionOptions(): object | null {
    return {};
  }
}

class PingHandler extends WebSocketHandler {
  override onPing(data: Buffer): void {
    void this.writeMessage(data, true);
  }
}

class PongHandler extends WebSocketHandler {
  override onPong(): void {
    void this.writeMessage("got pong").catch(() => undefined);
  }
}

class NonWebSocketHandler extends RequestHandler {
  get(): void { this.write("ok"); }
}

function app(settings: Record<string, unknown> = {}): Application {
  return new Application([
    ["/echo", EchoHandler], ["/header", HeaderHandler], ["/header_echo", HeaderEchoHandler],
    ["/subprotocol", SubprotocolHandler], ["/compressed", CompressedEcho], ["/ping", PingHandler],
    ["/pong", PongHandler], ["/non_ws", NonWebSocketHandler],
  ], settings);
}

function connect(t: Test, served: Served, path: string, options: WebSocket.ClientOptions = {}, protocols?: string[]): WebSocket {
  const ws = new WebSocket(`ws://127.0.0.1:${served.port}${path}`, protocols, options);
  ws.on("error", () => undefined);
  t.teardown(() => ws.terminate());
  return ws;
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once("message", (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })));
}

function handshake(version: string, key = "dGhlIHNhbXBsZSBub25jZQ=="): string {
  return `GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Version: ${version}\r\n`
    + `${key === "" ? "" : `Sec-WebSocket-Key: ${key}\r\n`}\r\n`;
}

t.test("WebSocketTest.test_http_request: a plain GET to a WebSocket route is a 400", async (t) => {
  expectLog(t);
  const served = await serve(t, app());
  const { responses } = await exchange(served.port, "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  t.equal(responses[0]?.status, 400);
});

t.test("WebSocketTest.test_missing_websocket_key: 400", async (t) => {
  expectLog(t);
  const served = await serve(t, app());
  const { responses } = await exchange(served.port, handshake("13", ""));
  t.equal(responses[0]?.status, 400);
});

t.test("WebSocketTest.test_bad_websocket_version: 426 with Sec-WebSocket-Version: 13", async (t) => {
  expectLog(t);
  const served = await serve(t, app());
  const { responses } = await exchange(served.port, handshake("12"));
  t.equal(responses[0]?.status, 426);
  t.equal(responses[0]?.headers["sec-websocket-version"], "13");
});

t.test("WebSocketTest.test_websocket_headers: HTTP output methods throw once the socket is open", async (t) => {
  const served = await serve(t, app());
  const ws = connect(t, served, "/header", { headers: { "X-Test": "hello" } });
  t.equal((await nextMessage(ws)).data.toString(), "hello");
});

t.test("WebSocketTest.test_websocket_header_echo: headers from setDefaultHeaders() and prepare() are on the 101", async (t) => {
  const served = await serve(t, app());
  const ws = connect(t, served, "/header_echo", { headers: { "X-Test-Hello": "hello" } });
  const [response] = (await once(ws, "upgrade")) as [{ headers: Record<string, string> }];
  t.equal(response.headers["x-test-hello"], "hello");
  t.equal(response.headers["x-extra-response-header"], "Extra-Response-Value");
  t.equal(response.headers["content-type"], undefined, "no HTTP body headers on the 101");
});

t.test("WebSocketTest.test_websocket_http_success: a WebSocket handshake to a plain route fails", async (t) => {
  expectLog(t);
  const served = await serve(t, app());
  const ws = connect(t, served, "/non_ws");
  const [, res] = (await once(ws, "unexpected-response")) as [unknown, { statusCode: number; resume(): void }];
  res.resume();
  t.not(res.statusCode, 101);
});

t.test("WebSocketTest.test_subprotocols: selectSubprotocol() picks among the offered ones, once", async (t) => {
  const served = await serve(t, app());
  selectCalls = 0;
  const ws = connect(t, served, "/subprotocol", {}, ["badproto", "goodproto"]);
  const message = nextMessage(ws);
  await once(ws, "open");
  t.equal(ws.protocol, "goodproto");
  t.equal((await message).data.toString(), "subprotocol=goodproto");
  t.equal(selectCalls, 1);
});

t.test("WebSocketTest.test_subprotocols_not_offered: none offered, none selected", async (t) => {
  const served = await serve(t, app());
  const ws = connect(t, served, "/subprotocol");
  const message = nextMessage(ws);
  await once(ws, "open");
  t.equal(ws.protocol, "");
  t.equal((await message).data.toString(), "subprotocol=null");
});

t.test("WebSocketTest (default selectSubprotocol): no subprotocol is chosen unless the handler chooses one", async (t) => {
  const served = await serve(t, app());
  // Raw: the `ws` client refuses a 101 without one of its protocols; browsers accept it.
  const { responses } = await exchange(served.port, handshake("13").replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n"), { responses: 1 });
  t.equal(responses[0]?.status, 101);
  t.equal(responses[0]?.headers["sec-websocket-protocol"], undefined, "the first offered protocol is not accepted on the handler's behalf");
});

t.test("NoCompressionTest / ServerOnlyCompressionTest / DefaultCompressionTest: permessage-deflate only when the handler asks", async (t) => {
  const served = await serve(t, app());
  const message = "Hello world. Testing 123 123";
  // NoCompressionTest: the client offers, the handler does not ask.
  const plain = connect(t, served, "/echo", { perMessageDeflate: true });
  await once(plain, "open");
  t.equal(plain.extensions, "", "not negotiated by default");
  // ServerOnlyCompressionTest: the handler asks, the client does not offer.
  const clientOff = connect(t, served, "/compressed", { perMessageDeflate: false });
  await once(clientOff, "open");
  t.equal(clientOff.extensions, "");
  // DefaultCompressionTest: both sides.
  const both = connect(t, served, "/compressed", { perMessageDeflate: true });
  await once(both, "open");
  t.match(both.extensions, /permessage-deflate/);
  for (let i = 0; i < 3; i++) {
    both.send(message);
    t.equal((await nextMessage(both)).data.toString(), message);
  }
});

t.test("ManualPingTest: onPing sees the ping's bytes", async (t) => {
  const served = await serve(t, app());
  const ws = connect(t, served, "/ping");
  await once(ws, "open");
  ws.ping("hello");
  const first = await nextMessage(ws);
  t.equal(first.data.toString(), "hello");
  t.equal(first.isBinary, true, "on_ping always sees bytes");
  ws.ping(Buffer.from("binary hello"));
  t.equal((await nextMessage(ws)).data.toString(), "binary hello");
});

t.test("ServerPeriodicPingTest: websocketPingTimeout: 0 disables the timeout, pings still go out", async (t) => {
  const served = await serve(t, app({ websocketPingInterval: 20, websocketPingTimeout: 0 }));
  const ws = connect(t, served, "/pong");
  for (let i = 0; i < 3; i++) t.equal((await nextMessage(ws)).data.toString(), "got pong");
  // A peer that stops answering is not closed when the timeout is off.
  const mute = connect(t, served, "/pong", { autoPong: false });
  await once(mute, "open");
  let pings = 0;
  await new Promise<void>((resolve) => mute.on("ping", () => { if (++pings === 5) resolve(); }));
  t.equal(mute.readyState, WebSocket.OPEN, "still open after five unanswered pings");
});

t.test("MaxMessageSizeTest.test_large_message: 1009 with the reason 'message too big'", async (t) => {
  expectLog(t);
  const served = await serve(t, app({ websocketMaxMessageSize: 1024 }));
  const ws = connect(t, served, "/echo");
  await once(ws, "open");
  const msg = "a".repeat(1024);
  ws.send(msg);
  t.equal((await nextMessage(ws)).data.toString(), msg);
  ws.send(`${msg}b`);
  const [code, reason] = (await once(ws, "close")) as [number, Buffer];
  t.equal(code, 1009);
  t.equal(reason.toString(), "message too big");
});
