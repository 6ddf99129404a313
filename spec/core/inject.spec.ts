// app.inject() (status, headers, body, text(), json(), request bodies, remote address) and
// withServer() itself (a live server during the callback, its value or error passed through,
// every connection closed afterwards).
import t from "tap";
import { connect } from "node:net";
import { Application, HTTPServer, RequestHandler, withServer } from "../../core/index.ts";
import { open } from "../helpers/raw-http.ts";
import { captureLog } from "../helpers/log.ts";

class Echo extends RequestHandler {
  get(): void {
    this.setHeader("X-Method", this.request.method);
    this.addHeader("X-Repeat", "1");
    this.addHeader("X-Repeat", "2");
    this.write({ ip: this.request.remoteIp, header: this.request.headers["x-in"] ?? null, host: this.request.host });
  }
  post(): void {
    this.setStatus(201);
    this.write({ type: this.request.headers["content-type"] ?? null, length: this.request.body.length, args: this.request.bodyArguments });
  }
  put(): void {
    this.write(this.request.body);
  }
}

class Binary extends RequestHandler {
  get(): void { this.write(Buffer.from([0xde, 0xad, 0xbe, 0xef])); }
}

const app = new Application([["/echo", Echo], ["/bin", Binary]]);

t.test("inject resolves to status, headers, body, text() and json()", async (t) => {
  const res = await app.inject({ url: "/echo", headers: { "x-in": "hi" } });
  t.equal(res.status, 200);
  t.equal(res.headers["x-method"], "GET");
  t.equal(res.headers["x-repeat"], "1, 2");
  t.equal(res.headers["content-type"], "application/json; charset=UTF-8");
  t.ok(Buffer.isBuffer(res.body));
  t.equal(res.text(), res.body.toString("utf8"));
  t.same(res.json(), { ip: "127.0.0.1", header: "hi", host: "127.0.0.1" });
});

t.test("inject sends string, byte and object bodies (objects as JSON)", async (t) => {
  const form = await app.inject({ method: "POST", url: "/echo", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "a=1&b=2" });
  t.equal(form.status, 201);
  t.same(form.json(), { type: "application/x-www-form-urlencoded", length: 7, args: { a: ["1"], b: ["2"] } });
  const json = await app.inject({ method: "POST", url: "/echo", body: { a: "x" } });
  t.same(json.json(), { type: "application/json", length: 9, args: { a: ["x"] } });
  const bytes = await app.inject({ method: "PUT", url: "/echo", body: new Uint8Array([1, 2, 3]) });
  t.same([...bytes.body], [1, 2, 3]);
});

t.test("inject returns binary bodies intact and honours remoteAddress and Host", async (t) => {
  t.same([...(await app.inject({ url: "/bin" })).body], [0xde, 0xad, 0xbe, 0xef]);
  const res = await app.inject({ url: "/echo", remoteAddress: "10.1.2.3", headers: { host: "example.com" } });
  t.match(res.json(), { ip: "10.1.2.3", host: "example.com" });
});

t.test("inject runs concurrent requests independently", async (t) => {
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => app.inject({ url: "/echo", headers: { "x-in": String(i) } })));
  t.same(results.map((r) => r.json<{ header: string }>().header), Array.from({ length: 20 }, (_, i) => String(i)));
});

t.test("withServer serves on a free 127.0.0.1 port, passes the server and returns the callback's value", async (t) => {
  let seenPort = 0;
  const value = await withServer(app, async (base, server) => {
    t.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    t.ok(server instanceof HTTPServer);
    seenPort = server.address()!.port;
    t.equal(base, `http://127.0.0.1:${seenPort}`);
    const res = await fetch(`${base}/echo`);
    t.equal(res.status, 200);
    return "returned";
  });
  t.equal(value, "returned");
  await t.rejects(open(seenPort), "the port is closed afterwards");
});

t.test("withServer closes the server and open keep-alive connections when the callback throws", async (t) => {
  let seenPort = 0;
  let socketClosed: Promise<void> = Promise.resolve();
  await t.rejects(withServer(app, async (base, server) => {
    seenPort = server.address()!.port;
    const socket = connect(seenPort, "127.0.0.1");
    socketClosed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => {});
    socket.write("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((resolve) => socket.once("data", resolve));
    t.ok(base);
    throw new Error("callback failed");
  }), { message: "callback failed" });
  await socketClosed;
  t.pass("the kept-alive connection was closed");
  await t.rejects(open(seenPort));
});

t.test("withServer passes server options through", async (t) => {
  captureLog(t);
  await withServer(app, async (base) => {
    const res = await fetch(`${base}/echo`, { method: "POST", body: "x".repeat(100) });
    t.equal(res.status, 413);
    await res.arrayBuffer();
  }, { maxBodySize: 10 });
});
