// Arguments as a handler reads them: query (`+` is a space), form-urlencoded, multipart with
// files, JSON; getArgument's default vs MissingArgumentError (400); the query/body variants;
// getJsonBody's 400; and the request's own fields. Each bad body is followed by a good request.
import t from "tap";
import { Application, MissingArgumentError, RequestHandler, withServer } from "../../core/index.ts";
import { captureLog } from "../helpers/log.ts";

class Args extends RequestHandler {
  get(): void { this.dump(); }
  post(): void { this.dump(); }
  put(): void { this.dump(); }
  dump(): void {
    const name = this.getQueryArgument("name", "a");
    this.write({
      last: this.getArgument(name, null),
      all: this.getArguments(name),
      query: this.getQueryArguments(name),
      queryLast: this.getQueryArgument(name, null),
      body: this.getBodyArguments(name),
      bodyLast: this.getBodyArgument(name, null),
      files: Object.fromEntries(Object.entries(this.request.files).map(([k, v]) => [k, v.map((f) => ({ ...f, body: f.body.toString("latin1") }))])),
    });
  }
}

class Required extends RequestHandler {
  get(): void { this.write(this.getArgument("needed")); }
  post(): void { this.write(this.getBodyArgument("needed")); }
  put(): void { this.write(this.getQueryArgument("needed")); }
}

class Json extends RequestHandler {
  post(): void { this.write({ got: this.getJsonBody<unknown>() }); }
}

class RequestFields extends RequestHandler {
  get(): void {
    const r = this.request;
    this.write({
      method: r.method, uri: r.uri, path: r.path, query: r.query, version: r.version, host: r.host, hostName: r.hostName,
      protocol: r.protocol, remoteIp: r.remoteIp, cookies: r.cookies, startTime: typeof r.startTime, bodyLength: r.body.length,
      fullUrl: r.fullUrl(), header: r.headers["x-custom"],
    });
  }
}

const app = new Application([["/args", Args], ["/required", Required], ["/json", Json], ["/request", RequestFields]]);

interface Dump { last: string | null; all: string[]; query: string[]; queryLast: string | null; body: string[]; bodyLast: string | null; files: Record<string, { filename: string; contentType: string; body: string }[]> }
const form = { "content-type": "application/x-www-form-urlencoded" };

t.test("query arguments: + is a space, percent-decoding, repeats in order, blank values kept", async (t) => {
  const res = await app.inject({ url: "/args?a=one+two&a=%C3%A9%2B&a=&b=x" });
  const d = res.json<Dump>();
  t.same(d.all, ["one two", "é+", ""]);
  t.equal(d.last, "", "the last value wins, even blank");
  t.same(d.query, ["one two", "é+", ""]);
  t.same(d.body, []);
  t.equal(d.bodyLast, null);
});

t.test("control characters are stripped and values trimmed, as Tornado does", async (t) => {
  const d = (await app.inject({ url: "/args?a=%00x%01y%20" })).json<Dump>();
  t.equal(d.last, "xy");
});

t.test("form-urlencoded body arguments merge after the query's", async (t) => {
  const d = (await app.inject({ method: "POST", url: "/args?a=q1", headers: form, body: "a=b1&a=b+2%21&c=3" })).json<Dump>();
  t.same(d.all, ["q1", "b1", "b 2!"]);
  t.equal(d.last, "b 2!");
  t.same(d.query, ["q1"]);
  t.equal(d.queryLast, "q1");
  t.same(d.body, ["b1", "b 2!"]);
  t.equal(d.bodyLast, "b 2!");
});

t.test("multipart bodies give fields as arguments and uploads as request.files", async (t) => {
  const boundary = "----typhoon-boundary";
  const body = [
    `--${boundary}`, 'Content-Disposition: form-data; name="a"', "", "field \xc3\xa9",
    `--${boundary}`, 'Content-Disposition: form-data; name="up"; filename="hello.txt"', "Content-Type: text/plain", "", "line1\r\nline2",
    `--${boundary}`, 'Content-Disposition: form-data; name="up"; filename="b.bin"', "", "\x00\x01\xff",
    `--${boundary}`, 'Content-Disposition: form-data; name="empty"; filename=""', "Content-Type: application/octet-stream", "", "",
    `--${boundary}--`, "",
  ].join("\r\n");
  const res = await app.inject({ method: "POST", url: "/args", headers: { "content-type": `multipart/form-data; boundary=${boundary}` }, body: Buffer.from(body, "latin1") });
  t.equal(res.status, 200);
  const d = res.json<Dump>();
  t.same(d.body, ["field é"], "fields are decoded as UTF-8");
  t.equal(d.files["empty"], undefined, "an empty file input is not an upload (Tornado's rule)");
  t.same(d.files["up"], [
    { filename: "hello.txt", contentType: "text/plain", body: "line1\r\nline2" },
    { filename: "b.bin", contentType: "application/unknown", body: "\x00\x01\xff" },
  ]);
});

t.test("a multipart upload through a real socket (fetch FormData)", async (t) => {
  await withServer(app, async (base) => {
    const fd = new FormData();
    fd.append("a", "from fetch");
    fd.append("up", new Blob([Buffer.from([1, 2, 3])], { type: "application/octet-stream" }), "x.bin");
    const d = (await (await fetch(`${base}/args`, { method: "POST", body: fd })).json()) as Dump;
    t.same(d.body, ["from fetch"]);
    t.equal(d.files["up"]?.[0]?.filename, "x.bin");
    t.equal(d.files["up"]?.[0]?.contentType, "application/octet-stream");
    t.equal(d.files["up"]?.[0]?.body, "\x01\x02\x03");
  });
});

t.test("a JSON object body's scalar members are arguments too", async (t) => {
  const d = (await app.inject({ method: "PUT", url: "/args", body: { a: 5, nested: { a: 1 } } })).json<Dump>();
  t.same(d.body, ["5"]);
  t.equal(d.last, "5");
});

t.test("getArgument with a default returns it; without one a missing argument is a 400", async (t) => {
  const lines = captureLog(t);
  t.equal((await app.inject({ url: "/required?needed=yes" })).text(), "yes");
  const res = await app.inject({ url: "/required" });
  t.equal(res.status, 400);
  t.match(res.text(), "Missing argument needed");
  t.match(lines.map((l) => l.message).join("\n"), "Missing argument needed", "logged too");
  const json = await app.inject({ url: "/required", headers: { accept: "application/json" } });
  t.same(json.json(), { status: 400, reason: "Missing argument needed" });
  const body = await app.inject({ method: "POST", url: "/required?needed=in-query", headers: form, body: "other=1" });
  t.equal(body.status, 400, "getBodyArgument ignores the query");
  const query = await app.inject({ method: "PUT", url: "/required", headers: form, body: "needed=in-body" });
  t.equal(query.status, 400, "getQueryArgument ignores the body");
  t.ok(new MissingArgumentError("x") instanceof Error);
  t.equal(new MissingArgumentError("x").status, 400);
});

t.test("getJsonBody parses JSON; invalid JSON is a 400 and the server keeps serving", async (t) => {
  captureLog(t);
  await withServer(app, async (base) => {
    const ok = await fetch(`${base}/json`, { method: "POST", body: '{"x":[1,"</script>"]}', headers: { "content-type": "application/json" } });
    t.same(await ok.json(), { got: { x: [1, "</script>"] } });
    for (const [type, body] of [["application/json", "{bad"], ["text/plain", "{bad"], ["application/json", "\xff"], ["application/vnd.x+json", "[1,"]]) {
      const res = await fetch(`${base}/json`, { method: "POST", body: Buffer.from(body!, "latin1"), headers: { "content-type": type! } });
      t.equal(res.status, 400, `${type} ${JSON.stringify(body)}`);
      await res.arrayBuffer();
      const good = await fetch(`${base}/json`, { method: "POST", body: "1" });
      t.same(await good.json(), { got: 1 }, "a good request after the bad one");
    }
  });
});

t.test("malformed form and multipart bodies are served leniently (Tornado): arguments left out, warning logged, raw body kept", async (t) => {
  const lines = captureLog(t);
  // [content type, body, the values of argument "a", whether a warning is logged]
  const cases: [string, string, string[], boolean][] = [
    ["application/x-www-form-urlencoded", "a=%zz", ["%zz"], false],
    ["application/x-www-form-urlencoded", "a=\xff&a=ok", ["ok"], true],
    ["multipart/form-data", "--x\r\n", [], true],
    ["multipart/form-data; boundary=x", "no boundary here", [], true],
    ["multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated", [], true],
    ["multipart/form-data; boundary=x", "--x\r\nno-headers-end", [], true],
    ["multipart/form-data; boundary=x", "--x\r\nContent-Type: text/plain\r\n\r\nv\r\n--x--", [], true],
    ["multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--", [], true],
  ];
  for (const [type, body, values, warned] of cases) {
    const before = lines.length;
    const res = await app.inject({ method: "POST", url: "/args", headers: { "content-type": type }, body: Buffer.from(body, "latin1") });
    const label = `${type}: ${JSON.stringify(body)}`;
    t.equal(res.status, 200, label);
    t.same(res.json<Dump>().all, values, label);
    t.equal(lines.slice(before).some((l) => l.level === "warn"), warned, `${label}: warning logged`);
  }
  const bad = await app.inject({ url: "/args?a=%E0%A4" });
  t.equal(bad.status, 400, "invalid UTF-8 in a query argument that is read is still a 400");
});

t.test("the request's fields", async (t) => {
  const res = await app.inject({ url: "/request?x=1&y", headers: { host: "Example.COM:8080", cookie: "a=1; b=two", "x-custom": "c" } });
  t.same(res.json(), {
    method: "GET", uri: "/request?x=1&y", path: "/request", query: "x=1&y", version: "HTTP/1.1", host: "Example.COM:8080",
    hostName: "example.com", protocol: "http", remoteIp: "127.0.0.1", cookies: { a: "1", b: "two" }, startTime: "number",
    bodyLength: 0, fullUrl: "http://Example.COM:8080/request?x=1&y", header: "c",
  });
});
