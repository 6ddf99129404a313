// Application routing as a user sees it over HTTP: groups reaching the handler (decoded, as
// arguments and as pathArgs/pathKwargs), 400 for undecodable groups, host rules, the default
// handler, reverseUrl, url(), callback() under a plain node:http server, and the 404.
import t from "tap";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Application, ErrorCode, RequestHandler, TyphoonError, url, withServer } from "../../core/index.ts";
import { exchange } from "../helpers/raw-http.ts";

class EchoArgs extends RequestHandler {
  get(...args: unknown[]): void {
    this.write({ args, pathArgs: this.pathArgs, pathKwargs: { ...this.pathKwargs }, undef: args.map((a) => a === undefined) });
  }
}

class Named extends RequestHandler {
  override initialize(init?: unknown): void {
    this.setHeader("X-Init", JSON.stringify(init ?? null));
  }
  get(kw: Record<string, string | undefined>): void {
    this.write({ kw: { ...kw }, same: kw === this.pathKwargs, pathArgs: this.pathArgs });
  }
}

class Text extends RequestHandler {
  override initialize(init?: unknown): void {
    this.text = String((init as { text?: string } | undefined)?.text ?? "none");
  }
  text = "";
  get(): void {
    this.write(this.text);
  }
}

class Reverser extends RequestHandler {
  get(): void {
    this.write(this.reverseUrl("file", "a b/c"));
  }
}

const app = new Application([
  ["/pos/(\\d+)/([^/]+)", EchoArgs],
  [/\/opt\/(\d+)?/, EchoArgs],
  ["/named/(?<user>[^/]+)/(?<id>\\d+)", Named, { from: "rule" }],
  url("/text", Text, { text: "from url()" }, "text"),
  ["/file/(.+)", EchoArgs, undefined, "file"],
  ["/rev", Reverser],
]);

t.test("positional groups are the method's arguments and this.pathArgs", async (t) => {
  const res = await app.inject({ url: "/pos/42/abc" });
  t.equal(res.status, 200);
  t.same(res.json(), { args: ["42", "abc"], pathArgs: ["42", "abc"], pathKwargs: {}, undef: [false, false] });
});

t.test("named groups arrive as one object, also this.pathKwargs", async (t) => {
  const res = await app.inject({ url: "/named/ann/7" });
  t.same(res.json(), { kw: { user: "ann", id: "7" }, same: true, pathArgs: [] });
  t.equal(res.headers["x-init"], JSON.stringify({ from: "rule" }), "initArgs reach initialize()");
});

t.test("an optional group that did not match is undefined", async (t) => {
  const res = await app.inject({ url: "/opt/" });
  t.same(res.json(), { args: [null], pathArgs: [null], pathKwargs: {}, undef: [true] });
  t.same((await app.inject({ url: "/opt/5" })).json<{ args: string[] }>().args, ["5"]);
});

t.test("groups are percent-decoded as UTF-8: + stays +, %2F is /", async (t) => {
  const res = await app.inject({ url: "/pos/1/a+b%20c%2Fd%C3%A9" });
  t.same(res.json<{ args: string[] }>().args, ["1", "a+b c/dé"]);
});

t.test("bad percent-encoding or invalid UTF-8 in a group → 400, and the server keeps serving", async (t) => {
  await withServer(app, async (base) => {
    for (const bad of ["/pos/1/%FF", "/pos/1/%C3", "/pos/1/%zz", "/pos/1/abc%", "/pos/1/%E0%80%80"]) {
      const res = await fetch(base + bad);
      t.equal(res.status, 400, bad);
      t.match(await res.text(), "400: Bad Request");
      const good = await fetch(`${base}/pos/1/ok`);
      t.equal(good.status, 200, `a good request after ${bad}`);
      await good.arrayBuffer();
    }
    const json = await fetch(`${base}/pos/1/%FF`, { headers: { accept: "application/json" } });
    t.same(await json.json(), { status: 400, reason: "Bad Request" }, "the 400 is JSON-aware");
  });
});

t.test("raw non-ASCII bytes in the request target are refused with 400", async (t) => {
  await withServer(app, async (base) => {
    const port = Number(new URL(base).port);
    const bytes = Buffer.concat([Buffer.from("GET /pos/1/"), Buffer.from([0xff]), Buffer.from(" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")]);
    const { responses } = await exchange(port, bytes, { responses: 1 });
    t.equal(responses[0]?.status, 400);
    t.equal((await fetch(`${base}/text`)).status, 200);
  });
});

t.test("unmatched paths get a 404 for any method, JSON when Accept prefers it", async (t) => {
  for (const method of ["GET", "POST", "DELETE"]) {
    const res = await app.inject({ method, url: "/missing" });
    t.equal(res.status, 404, method);
    t.equal(res.text(), "<html><title>404: Not Found</title><body>404: Not Found</body></html>");
  }
  const res = await app.inject({ url: "/missing", headers: { accept: "application/json" } });
  t.equal(res.status, 404);
  t.match(res.headers["content-type"], /^application\/json/);
  t.same(res.json(), { status: 404, reason: "Not Found" });
});

t.test("rules are anchored: a prefix or suffix of a rule does not match", async (t) => {
  t.equal((await app.inject({ url: "/text/more" })).status, 404);
  t.equal((await app.inject({ url: "/x/text" })).status, 404);
  t.equal((await app.inject({ url: "/text?q=1" })).status, 200, "the query string is not part of the path");
});

t.test("url() rules carry init arguments and a name", async (t) => {
  t.equal((await app.inject({ url: "/text" })).text(), "from url()");
  t.equal(app.reverseUrl("text"), "/text");
});

t.test("absolute-form request targets are routed by their path", async (t) => {
  await withServer(app, async (base) => {
    const port = Number(new URL(base).port);
    const { responses } = await exchange(port, "GET http://example.com/text?x=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", { responses: 1 });
    t.equal(responses[0]?.status, 200);
    t.equal(responses[0]?.body.toString(), "from url()");
  });
});

t.test("reverseUrl encodes arguments (keeping /), and handler.reverseUrl agrees", async (t) => {
  t.equal(app.reverseUrl("file", "a b/c"), "/file/a%20b/c");
  t.equal(app.reverseUrl("file", 12), "/file/12");
  t.equal((await app.inject({ url: "/rev" })).text(), "/file/a%20b/c");
  const unknown = t.throws(() => app.reverseUrl("nope")) as TyphoonError;
  t.equal(unknown.code, ErrorCode.REVERSE_URL);
  const count = t.throws(() => app.reverseUrl("file")) as TyphoonError;
  t.equal(count.code, ErrorCode.REVERSE_URL);
});

t.test("a reversed URL routes back to the same rule with the same argument", async (t) => {
  const path = app.reverseUrl("file", "x y/é?&");
  t.same((await app.inject({ url: path })).json<{ args: string[] }>().args, ["x y/é?&"]);
});

t.test("invalid patterns and mixed groups fail at new Application naming the pattern", async (t) => {
  const mixed = t.throws(() => new Application([["/(?<a>x)/(y)", Text]])) as TyphoonError;
  t.equal(mixed.code, ErrorCode.ROUTE_PATTERN);
  t.match(mixed.message, "/(?<a>x)/(y)");
  const invalid = t.throws(() => new Application([url("/bad/(", Text)])) as TyphoonError;
  t.equal(invalid.code, ErrorCode.ROUTE_PATTERN);
  t.match(invalid.message, "/bad/(");
});

t.test("addHandlers: host rules match the Host lower-cased without its port, before host-less rules", async (t) => {
  class Host extends RequestHandler {
    override initialize(init?: unknown): void { this.tag = String(init); }
    tag = "";
    get(): void { this.write(this.tag); }
  }
  const hosted = new Application([["/", Host, "default"], ["/only-default", Host, "default-only"]]);
  hosted.addHandlers("api\\.example\\.com", [["/", Host, "api"], url("/v/(\\d+)", Host, "api-v", "api-v")]);
  hosted.addHandlers(/.*\.example\.org/, [["/", Host, "org"]]);
  const get = async (host: string, path = "/"): Promise<string> => (await hosted.inject({ url: path, headers: { host } })).text();
  t.equal(await get("api.example.com"), "api");
  t.equal(await get("API.Example.COM:8080"), "api", "case and port are ignored");
  t.equal(await get("www.example.org"), "org");
  t.equal(await get("other.com"), "default");
  t.equal(await get("api.example.com.evil.com"), "default", "the host pattern is anchored");
  t.equal(await get("api.example.com", "/only-default"), "default-only", "host-less rules still apply to a matching host");
  t.equal(hosted.reverseUrl("api-v", 3), "/v/3", "names of host rules reverse too");
  await withServer(hosted, async (base) => {
    const port = Number(new URL(base).port);
    const { responses } = await exchange(port, "GET / HTTP/1.1\r\nHost: api.example.com:1234\r\nConnection: close\r\n\r\n", { responses: 1 });
    t.equal(responses[0]?.body.toString(), "api", "over a real socket too");
  });
});

t.test("defaultHandlerClass with defaultHandlerArgs answers unmatched paths", async (t) => {
  const fallback = new Application([["/", Text, { text: "root" }]], { defaultHandlerClass: Text, defaultHandlerArgs: { text: "fallback" } });
  const res = await fallback.inject({ url: "/anything/else" });
  t.equal(res.status, 200);
  t.equal(res.text(), "fallback");
  t.equal((await fallback.inject({ url: "/" })).text(), "root");
});

t.test("callback() serves the app from a plain http.createServer", async (t) => {
  const server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const res = await fetch(`${base}/pos/3/x`);
  t.equal(res.status, 200);
  t.same(((await res.json()) as { args: string[] }).args, ["3", "x"]);
  const missing = await fetch(`${base}/nope`);
  t.equal(missing.status, 404);
  await missing.arrayBuffer();
  const post = await fetch(`${base}/text`, { method: "POST", body: "x" });
  t.equal(post.status, 405);
});

t.test("app.listen resolves to a listening HTTPServer", async (t) => {
  const server = await app.listen(0, "127.0.0.1");
  t.teardown(() => server.stop(0));
  const port = server.address()!.port;
  t.ok(port > 0);
  t.equal(await (await fetch(`http://127.0.0.1:${port}/text`)).text(), "from url()");
});

t.test("reverseUrl fills named groups from an object, for RegExp rules too", async (t) => {
  const named = new Application([
    url("/u/(?<user>[^/]+)/(?<post>\\d+)", Named, undefined, "post"),
    url(/\/r\/(\d+)/, EchoArgs, undefined, "regexp"),
  ]);
  const path = named.reverseUrl("post", { user: "ann b", post: 3 });
  t.equal(path, "/u/ann%20b/3");
  t.same((await named.inject({ url: path })).json<{ kw: unknown }>().kw, { user: "ann b", post: "3" });
  t.equal(named.reverseUrl("regexp", 9), "/r/9");
  t.same((await named.inject({ url: "/r/9" })).json<{ args: string[] }>().args, ["9"]);
});

t.test("an invalid host pattern in addHandlers throws E_ROUTE_PATTERN naming it", async (t) => {
  const err = t.throws(() => new Application().addHandlers("api.(", [["/", Text]])) as TyphoonError;
  t.equal(err.code, ErrorCode.ROUTE_PATTERN);
  t.match(err.message, "api.(");
});
