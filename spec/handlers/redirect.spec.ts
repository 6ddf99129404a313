// RedirectHandler over real sockets: Tornado's RedirectHandlerTest cases (301, query kept and
// appended, {1}/{0} substitution), named groups, permanent: false, and no off-site redirects.
import t from "tap";
import { Application } from "../../core/web/app.ts";
import { RedirectHandler } from "../../handlers/redirect.ts";
import { listen } from "../helpers/listen.ts";
import { captureLog } from "../helpers/log.ts";
import { rawRequest } from "./raw-request.ts";

const app = new Application([
  ["/src", RedirectHandler, { url: "/dst" }],
  ["/src2", RedirectHandler, { url: "/dst2?foo=bar" }],
  ["/temp", RedirectHandler, { url: "/elsewhere", permanent: false }],
  ["/named/(?<user>[^/]+)/(?<tab>[^/]+)", RedirectHandler, { url: "/u/{user}?tab={tab}" }],
  ["/go/(.*)", RedirectHandler, { url: "/{0}" }],
  ["/(.*?)/(.*?)/(.*)", RedirectHandler, { url: "/{1}/{0}/{2}" }],
]);

t.test("Tornado's redirect cases: 301, query kept, query appended, {1}/{0}/{2} substitution", async (t) => {
  captureLog(t);
  const { port } = await listen(t, app);
  const base = `http://127.0.0.1:${port}`;
  const cases: [string, number, string][] = [
    ["/src", 301, "/dst"],
    ["/src?foo=bar", 301, "/dst?foo=bar"],
    ["/src2?foo2=bar2", 301, "/dst2?foo=bar&foo2=bar2"],
    ["/a/b/c", 301, "/b/a/c"],
    ["/a/b/c?x=1&y=2", 301, "/b/a/c?x=1&y=2"],
    ["/temp", 302, "/elsewhere"],
    ["/named/ann/posts", 301, "/u/ann?tab=posts"],
  ];
  for (const [path, status, location] of cases) {
    const r = await rawRequest(base, path);
    t.equal(r.status, status, `${path} → ${status}`);
    t.equal(r.headers.location, location, `${path} → ${location}`);
  }
});

t.test("substituted groups cannot turn the target into another site or inject a query", async (t) => {
  captureLog(t);
  const { port } = await listen(t, app);
  const base = `http://127.0.0.1:${port}`;
  const offsite = await rawRequest(base, "/go/%2Fevil.example");
  t.equal(offsite.headers.location, "/evil.example", "no protocol-relative //evil.example");
  const query = await rawRequest(base, "/go/a%3Fadmin%3D1");
  t.equal(query.headers.location, "/a%3Fadmin=1", "a decoded ? stays data");
  t.equal((await rawRequest(base, "/src", { method: "POST" })).status, 405, "only GET redirects");
});
