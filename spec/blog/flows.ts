/**
 * The blog's flows over real HTTP, shared by the embedded-database and the PostgreSQL-server
 * specs: create the author, log in and out, compose, view, edit, the archive, the Atom feed
 * (parsed as XML, RFC 4287's required elements checked), XSRF refusals, escaping, Spanish.
 */
import type { Test } from "tap";
import { makeBlogApp } from "../../scripts/blog/app.ts";
import type { Database } from "../../scripts/blog/db.ts";
import { childrenNamed, parseXml, type XmlElement } from "../helpers/xml.ts";

const ATOM = "http://www.w3.org/2005/Atom";
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;
const EVIL_TITLE = `<script>alert("owned")</script> Hello & welcome`;

/** A tiny browser: a cookie jar over fetch, redirects not followed. */
export class Client {
  readonly #base: string;
  readonly #jar = new Map<string, string>();
  readonly #headers: Record<string, string>;

  constructor(base: string, headers: Record<string, string> = {}) {
    this.#base = base;
    this.#headers = headers;
  }

  cookie(name: string): string | undefined {
    return this.#jar.get(name);
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.#remember(await fetch(this.#base + path, { redirect: "manual", headers: { ...this.#headers, ...headers, cookie: this.#cookies() } }));
  }

  async post(path: string, form: Record<string, string>): Promise<Response> {
    return this.#remember(await fetch(this.#base + path, {
      method: "POST",
      redirect: "manual",
      headers: { ...this.#headers, cookie: this.#cookies(), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form).toString(),
    }));
  }

  /** The `_xsrf` value of the first form on a page (and its cookie is in the jar). */
  static xsrfOf(html: string): string {
    const m = /<input type="hidden" name="_xsrf" value="([^"]+)"\/>/.exec(html);
    if (m === null) throw new Error(`no _xsrf field in ${html.slice(0, 500)}`);
    return m[1]!;
  }

  #cookies(): string {
    return [...this.#jar].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  #remember(res: Response): Response {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === "";
      if (expired) this.#jar.delete(name);
      else this.#jar.set(name, value);
    }
    return res;
  }
}

function one(t: Test, parent: XmlElement, name: string, where: string): XmlElement {
  const found = childrenNamed(parent, ATOM, name);
  t.equal(found.length, 1, `${where} has exactly one atom:${name}`);
  return found[0]!;
}

/** Checks RFC 4287's required elements of a feed and its entries; returns the entries. */
export function checkAtom(t: Test, xml: string): XmlElement[] {
  const feed = parseXml(xml);
  t.equal(feed.ns, ATOM, "the root is in the Atom namespace");
  t.equal(feed.name, "feed");
  t.match(one(t, feed, "id", "feed").text, /^https?:\/\//, "the feed id is an absolute IRI");
  t.ok(one(t, feed, "title", "feed").text.length > 0);
  t.match(one(t, feed, "updated", "feed").text, RFC3339, "feed updated is an RFC 3339 date");
  const feedAuthors = childrenNamed(feed, ATOM, "author");
  const self = childrenNamed(feed, ATOM, "link").find((l) => l.attributes["rel"] === "self");
  t.ok(self, "the feed links to itself");
  const entries = childrenNamed(feed, ATOM, "entry");
  for (const entry of entries) {
    t.match(one(t, entry, "id", "entry").text, /^https?:\/\//);
    one(t, entry, "title", "entry");
    t.match(one(t, entry, "updated", "entry").text, RFC3339);
    const alternate = childrenNamed(entry, ATOM, "link").some((l) => (l.attributes["rel"] ?? "alternate") === "alternate");
    t.ok(alternate || childrenNamed(entry, ATOM, "content").length === 1, "an entry has an alternate link or content");
    t.ok(feedAuthors.length > 0 || childrenNamed(entry, ATOM, "author").length > 0, "every entry has an author (its own or the feed's)");
  }
  return entries;
}

/**
 * Runs every blog flow against `db` (a fresh, empty database) over a real socket.
 */
export async function blogFlows(t: Test, db: Database): Promise<void> {
  const { app, context } = makeBlogApp({ db, cookieSecret: "spec-secret", settings: { serveTraceback: true } });
  const server = await app.listen(0, "127.0.0.1");
  t.teardown(async () => {
    await server.stop();
    await context.passwords.shutdown();
  });
  const { port } = server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  const browser = new Client(base);

  await t.test("a new blog sends the visitor to create the author", async (t) => {
    let res = await browser.get("/");
    t.equal(res.status, 302);
    t.equal(res.headers.get("location"), "/compose", "no entries: compose");
    res = await browser.get("/compose");
    t.equal(res.status, 302);
    t.equal(res.headers.get("location"), "/auth/login?next=%2Fcompose", "@authenticated: log in first");
    res = await browser.get("/auth/login");
    t.equal(res.headers.get("location"), "/auth/create", "no author: create one");
  });

  await t.test("create the author: XSRF required, password hashed with scrypt on the thread pool", async (t) => {
    const form = await browser.get("/auth/create");
    t.equal(form.status, 200);
    const html = await form.text();
    for (const field of ["email", "name", "password"]) t.match(html, new RegExp(`name="${field}"`), `the form has ${field}`);
    const xsrf = Client.xsrfOf(html);
    const refused = await browser.post("/auth/create", { email: "a@example.com", name: "Ada", password: "pw" });
    t.equal(refused.status, 403, "no _xsrf: 403");
    const before = context.passwords.stats().completed;
    const created = await browser.post("/auth/create", { email: "ada@example.com", name: "Ada <Author>", password: "s3cret pass", _xsrf: xsrf });
    t.equal(created.status, 302);
    t.equal(created.headers.get("location"), "/");
    t.match(browser.cookie("blogdemo_user"), /^"?2\|1:0\|/, "a Tornado version-2 signed cookie (quoted, as Tornado quotes it)");
    t.equal(context.passwords.stats().completed, before + 1, "the hash ran on the executor");
    const [author] = await db.query<{ hashed_password: string; name: string }>("SELECT * FROM authors");
    t.match(author!.hashed_password, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    t.notMatch(author!.hashed_password, /s3cret/);
    const again = await browser.post("/auth/create", { email: "eve@example.com", name: "Eve", password: "x", _xsrf: xsrf });
    t.equal(again.status, 400, "only one author");
  });

  let slug = "";
  await t.test("compose: without the XSRF token 403; with it the entry is stored and shown", async (t) => {
    const form = await browser.get("/compose");
    t.equal(form.status, 200);
    const html = await form.text();
    t.match(html, /name="title"/);
    t.match(html, /name="markdown"/);
    const xsrf = Client.xsrfOf(html);
    const refused = await browser.post("/compose", { title: "no token", markdown: "x" });
    t.equal(refused.status, 403, "compose without the XSRF token");
    const wrong = await browser.post("/compose", { title: "bad token", markdown: "x", _xsrf: "2|00000000|00000000000000000000000000000000|1" });
    t.equal(wrong.status, 403, "a token that does not match the cookie");
    t.equal((await db.query("SELECT id FROM entries")).length, 0, "nothing was stored");
    const posted = await browser.post("/compose", { title: EVIL_TITLE, markdown: "Some **bold** text.\n\n- one\n- two", _xsrf: xsrf });
    t.equal(posted.status, 302);
    const location = posted.headers.get("location")!;
    t.match(location, /^\/entry\/script-alert-owned-script-hello-welcome$/, "Tornado's slug rules");
    slug = location.slice("/entry/".length);
  });

  await t.test("view: the entry page through the base layout and the entry include, title escaped", async (t) => {
    const res = await browser.get(`/entry/${slug}`);
    t.equal(res.status, 200);
    t.equal(res.headers.get("content-type"), "text/html; charset=UTF-8");
    const html = await res.text();
    t.notMatch(html, /<script>alert/, "no live script tag anywhere");
    t.match(html, /<h1><a href="\/entry\/[^"]+">&lt;script&gt;alert\(&quot;owned&quot;\)&lt;\/script&gt; Hello &amp; welcome<\/a><\/h1>/);
    t.match(html, /<title>&lt;script&gt;.* - typhoon Blog<\/title>/, "the block title extends the base's with super()");
    t.match(html, /<strong>bold<\/strong>/, "Markdown rendered");
    t.match(html, /<li>one<\/li>/);
    t.match(html, /class="date"[^>]*>\d+ seconds? ago</, "a relative date");
    t.match(html, /href="\/static\/blog\.css\?v=[0-9a-f]{32}"/, "staticUrl");
    t.match(html, /Edit this post/, "the author sees the edit link");
    t.match(html, /<span class="who">Ada &lt;Author&gt;<\/span>/, "currentUser in the layout, escaped");
    const css = await browser.get(new URL(/href="(\/static\/blog\.css\?v=[0-9a-f]+)"/.exec(html)![1]!, base).pathname);
    t.equal(css.status, 200);
    t.equal((await browser.get("/entry/no-such-entry")).status, 404);
  });

  await t.test("edit: the compose form is filled in, saving keeps the slug and changes the text", async (t) => {
    const [entry] = await db.query<{ id: number }>("SELECT id FROM entries WHERE slug = $1", [slug]);
    const form = await browser.get(`/compose?id=${entry!.id}`);
    const html = await form.text();
    t.match(html, /value="&lt;script&gt;alert\(&quot;owned&quot;\)&lt;\/script&gt; Hello &amp; welcome"/, "the title, escaped in the attribute");
    t.match(html, /Some \*\*bold\*\* text\./);
    t.match(html, new RegExp(`<input type="hidden" name="id" value="${entry!.id}">`));
    const saved = await browser.post("/compose", {
      id: String(entry!.id), title: "Hello, edited", markdown: "Now *emphasis*.", _xsrf: Client.xsrfOf(html),
    });
    t.equal(saved.headers.get("location"), `/entry/${slug}`);
    const page = await (await browser.get(`/entry/${slug}`)).text();
    t.match(page, /Hello, edited/);
    t.match(page, /<em>emphasis<\/em>/);
    t.equal((await browser.post("/compose", { id: "999", title: "x", markdown: "y", _xsrf: Client.xsrfOf(html) })).status, 404);
  });

  await t.test("home and archive list the entries; plural forms in English and Spanish", async (t) => {
    const form = await (await browser.get("/compose")).text();
    await browser.post("/compose", { title: "Second post", markdown: "Two.", _xsrf: Client.xsrfOf(form) });
    const home = await (await browser.get("/")).text();
    t.equal(home.match(/<div class="entry">/g)?.length, 2, "the entry include is rendered once per entry");
    t.ok(home.indexOf("Second post") < home.indexOf("Hello, edited"), "newest first");
    const archive = await (await browser.get("/archive")).text();
    t.match(archive, /<p class="count">2 entries<\/p>/);
    t.match(archive, /<a href="\/entry\/second-post">Second post<\/a>/);
    const spanish = new Client(base, { "accept-language": "es-ES,es;q=0.9" });
    const es = await (await spanish.get("/archive")).text();
    t.match(es, /<html lang="es-ES">/);
    t.match(es, /<p class="count">2 entradas<\/p>/);
    t.match(es, />Entrar</, "_() in Spanish");
    t.match(es, /para escribir o editar/);
  });

  await t.test("the Atom feed is well-formed XML with RFC 4287's required elements; titles escaped", async (t) => {
    const form = await (await browser.get("/compose")).text();
    await browser.post("/compose", { title: EVIL_TITLE, markdown: "x < y & **z**", _xsrf: Client.xsrfOf(form) });
    const res = await browser.get("/feed");
    t.equal(res.status, 200);
    t.equal(res.headers.get("content-type"), "application/atom+xml; charset=UTF-8");
    const xml = await res.text();
    t.notMatch(xml, /<script>/, "the raw feed has no script tag");
    const entries = checkAtom(t, xml);
    t.equal(entries.length, 3);
    const titles = entries.map((e) => childrenNamed(e, ATOM, "title")[0]!.text);
    t.ok(titles.includes(EVIL_TITLE), "the parsed title is the literal text: escaped once, exactly");
    const content = childrenNamed(entries[0]!, ATOM, "content")[0]!;
    t.equal(content.attributes["type"], "html");
    t.match(content.text, /<p>x &lt; y &amp; <strong>z<\/strong><\/p>/, "the HTML content survives the XML escaping");
  });

  await t.test("log out, then log in: wrong password, unknown email, right password", async (t) => {
    const out = await browser.get("/auth/logout?next=%2Farchive");
    t.equal(out.headers.get("location"), "/archive");
    t.equal(browser.cookie("blogdemo_user"), undefined, "the login cookie is cleared");
    t.equal((await browser.get("/compose")).status, 302, "compose needs a login again");
    const page = await (await browser.get("/auth/login?next=%2Fcompose")).text();
    const xsrf = Client.xsrfOf(page);
    const wrong = await browser.post("/auth/login", { email: "ada@example.com", password: "nope", _xsrf: xsrf });
    t.equal(wrong.status, 200);
    t.match(await wrong.text(), /incorrect password/);
    const unknown = await browser.post("/auth/login", { email: "who@example.com", password: "x", _xsrf: xsrf });
    t.match(await unknown.text(), /email not found/);
    const ok = await browser.post("/auth/login", { email: "ada@example.com", password: "s3cret pass", next: "/compose", _xsrf: xsrf });
    t.equal(ok.status, 302);
    t.equal(ok.headers.get("location"), "/compose");
    t.equal((await browser.get("/compose")).status, 200);
    const offsite = await browser.post("/auth/login", { email: "ada@example.com", password: "s3cret pass", next: "//evil.example/", _xsrf: xsrf });
    t.equal(offsite.headers.get("location"), "/", "next never leaves the site");
  });
}
