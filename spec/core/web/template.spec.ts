// Templates through handlers: render() and renderString(), inheritance and includes, escaping,
// the namespace (staticUrl, xsrfFormHtml, reverseUrl, _, locale, currentUser), translations by
// Accept-Language, the getTemplateNamespace and getUserLocale hooks, the compiled-template cache
// (off in debug), another engine behind TemplateLoader, and template errors as 500s that name
// the template and line.
import t from "tap";
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  Application, Locale, NunjucksLoader, RequestHandler, TemplateError, loadTranslations, url, type AppSettings, type TemplateLoader,
} from "../../../core/index.ts";
import { captureLog, logText } from "../../helpers/log.ts";

const TEMPLATES = fileURLToPath(new URL("../../fixtures/templates/", import.meta.url));
const STATIC = fileURLToPath(new URL("../../fixtures/static/root/", import.meta.url));
const LOCALES = fileURLToPath(new URL("../../fixtures/locale/", import.meta.url));

class PageHandler extends RequestHandler {
  override getCurrentUser(): unknown {
    const name = this.getArgument("user", null);
    return name === null ? null : { name };
  }
  override getTemplateNamespace(): Record<string, unknown> {
    return { ...super.getTemplateNamespace(), extra: "from the hook", title: "hook title" };
  }
  get(): Promise<void> {
    return this.render("page.html", {
      title: this.getArgument("title", "Hello"),
      html: "<em>trusted</em>",
      items: ["a<b", "c"],
      when: Date.now() - 3 * 60_000,
    });
  }
}

class TemplateHandler extends RequestHandler {
  get(name: string): Promise<void> {
    return this.render(name, { name: "<world>" });
  }
}

class UnawaitedHandler extends RequestHandler {
  get(): void {
    // Not awaited: the default engine renders and finishes synchronously, like Tornado's render().
    void this.render("plain.txt", { name: "sync" });
  }
}

class StringHandler extends RequestHandler {
  async get(): Promise<void> {
    const text = await this.renderString("plain.txt", { name: "<typhoon>" });
    this.setHeader("Content-Type", "text/plain; charset=UTF-8");
    this.finish(`[${text.trim()}]`);
  }
}

class FeedLikeHandler extends RequestHandler {
  get(): Promise<void> {
    this.setHeader("Content-Type", "application/atom+xml; charset=UTF-8");
    return this.render("plain.txt", { name: "feed" });
  }
}

class AsyncUserHandler extends RequestHandler {
  override async getCurrentUser(): Promise<unknown> {
    await new Promise((resolve) => setImmediate(resolve));
    return { name: "async-ada" };
  }
  get(): Promise<void> {
    return this.render("page.html", { items: [], when: Date.now() });
  }
}

class SpanishUserHandler extends RequestHandler {
  override getUserLocale(): Locale | null {
    return this.getArgument("lang", null) === "es" ? Locale.get("es_ES") : null;
  }
  get(): void {
    this.write(`${this.locale.code}:${this.locale.translate("Sign in")}`);
  }
}

function makeApp(settings: AppSettings = {}): Application {
  return new Application([
    url("/page", PageHandler),
    url("/t/(.+)", TemplateHandler),
    url("/unawaited", UnawaitedHandler),
    url("/string", StringHandler),
    url("/feed", FeedLikeHandler),
    url("/who", SpanishUserHandler),
    url("/async-user", AsyncUserHandler),
    url("/thing/(\\d+)", PageHandler, undefined, "thing"),
  ], { templatePath: TEMPLATES, staticPath: STATIC, xsrfCookies: true, ...settings });
}

t.before(() => loadTranslations(LOCALES));

t.test("render: inheritance with super(), includes in a loop, text/html; charset=UTF-8", async (t) => {
  const res = await makeApp().inject({ url: "/page" });
  t.equal(res.status, 200);
  t.equal(res.headers["content-type"], "text/html; charset=UTF-8");
  const html = res.text();
  t.match(html, /<title>Hello \| Base title<\/title>/, "the child block wraps the parent's with super()");
  t.match(html, /<!DOCTYPE html>/, "the base layout is the page");
  t.notMatch(html, /base body/, "the child's block replaced the base's");
  t.match(html, /<li class="item">1:a&lt;b<\/li>\s*<li class="item">2:c<\/li>/, "the include sees the loop's variables");
  t.match(html, /<p class="path">\/page GET -<\/p>/, "request and handler are in the namespace");
});

t.test("escaping: {{ }} output is HTML-escaped, | safe is not, and autoescape: false turns it off", async (t) => {
  const res = await makeApp().inject({ url: `/page?title=${encodeURIComponent("<script>alert(1)</script>")}` });
  const html = res.text();
  t.match(html, /<h1>&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/h1>/);
  t.notMatch(html, /<script>alert/);
  t.match(html, /<div class="raw"><em>trusted<\/em><\/div>/);
  const off = await makeApp({ autoescape: false }).inject({ url: "/t/plain.txt" });
  t.equal(off.text().trim(), "Hello <world>!");
  const on = await makeApp().inject({ url: "/t/plain.txt" });
  t.equal(on.text().trim(), "Hello &lt;world&gt;!");
});

t.test("staticUrl, reverseUrl and xsrfFormHtml() (unescaped, and it sets the _xsrf cookie)", async (t) => {
  const res = await makeApp().inject({ url: "/page" });
  const html = res.text();
  t.match(html, /href="\/static\/sample\.xml\?v=[0-9a-f]{32}"/);
  t.match(html, /<a href="\/thing\/7">/);
  const input = /<form method="post">(<input type="hidden" name="_xsrf" value="([^"]+)"\/>)<\/form>/.exec(html);
  t.ok(input, "the hidden input is raw HTML, not &lt;input");
  t.match(String(res.headers["set-cookie"]), /_xsrf=/);
});

t.test("currentUser, getTemplateNamespace() additions, and render()'s own values win over the hook", async (t) => {
  const res = await makeApp().inject({ url: "/page?user=ada&title=mine" });
  const html = res.text();
  t.match(html, /<nav>user:ada<\/nav>/);
  t.match(html, /<p class="extra">from the hook<\/p>/);
  t.match(html, /<h1>mine<\/h1>/, "render(name, ns) overrides getTemplateNamespace()");
  const async = await makeApp().inject({ url: "/async-user" });
  t.equal(async.status, 200);
  t.match(async.text(), /<nav>user:async-ada<\/nav>/, "an async getCurrentUser() is awaited before rendering");
});

t.test("_() and locale follow Accept-Language: Spanish strings, plurals, relative dates", async (t) => {
  const en = (await makeApp().inject({ url: "/page" })).text();
  t.match(en, /<html lang="en-US">/);
  t.match(en, /<nav>Sign in<\/nav>/);
  t.match(en, /<p class="count">2 entries<\/p>/);
  t.match(en, /<p class="when">3 minutes ago<\/p>/);
  const es = (await makeApp().inject({ url: "/page", headers: { "accept-language": "es-ES,es;q=0.9,en;q=0.5" } })).text();
  t.match(es, /<html lang="es-ES">/);
  t.match(es, /<nav>Entrar<\/nav>/);
  t.match(es, /<p class="count">2 entradas<\/p>/);
  t.match(es, /<p class="when">hace 3 minutos<\/p>/);
  const fr = (await makeApp().inject({ url: "/page", headers: { "accept-language": "de;q=1, fr-fr;q=0.8" } })).text();
  t.match(fr, /<html lang="fr-FR">/, "the first supported language, any case");
  const lang = (await makeApp().inject({ url: "/page", headers: { "accept-language": "fr" } })).text();
  t.match(lang, /<html lang="en-US">/, "as in Tornado, a bare language does not pick a regional file (fr_FR)");
});

t.test("getUserLocale() wins over the browser's language", async (t) => {
  const app = makeApp();
  t.equal((await app.inject({ url: "/who?lang=es" })).text(), "es_ES:Entrar");
  t.equal((await app.inject({ url: "/who", headers: { "accept-language": "fr-FR" } })).text(), "fr_FR:Sign in");
  t.equal((await app.inject({ url: "/who" })).text(), "en_US:Sign in");
});

t.test("renderString returns the text; render keeps a Content-Type set before it; render() works unawaited", async (t) => {
  const app = makeApp();
  const unawaited = await app.inject({ url: "/unawaited" });
  t.equal(unawaited.status, 200);
  t.equal(unawaited.text().trim(), "Hello sync!");
  t.equal((await app.inject({ url: "/string" })).text(), "[Hello &lt;typhoon&gt;!]");
  const feed = await app.inject({ url: "/feed" });
  t.equal(feed.headers["content-type"], "application/atom+xml; charset=UTF-8");
  t.equal(feed.text().trim(), "Hello feed!");
});

t.test("a runtime error in a template is a 500 naming the template and line; the stack only with serveTraceback", async (t) => {
  const lines = captureLog(t);
  const res = await makeApp().inject({ url: "/t/error-runtime.html" });
  t.equal(res.status, 500);
  t.match(res.text(), /Template error in error-runtime\.html, line 4/);
  t.notMatch(res.text(), /explode|at /, "no message or stack without serveTraceback");
  t.match(logText(lines), /error-runtime\.html, line 4: .*explode/, "the log has the whole message");

  const traced = await makeApp({ serveTraceback: true }).inject({ url: "/t/error-runtime.html" });
  t.equal(traced.status, 500);
  t.match(traced.text(), /TemplateError: error-runtime\.html, line 4: .*explode/);
  t.match(traced.text(), /\n\s+at /, "the stack is served");
  const debug = await makeApp({ debug: true }).inject({ url: "/t/error-runtime.html" });
  t.match(debug.text(), /\n\s+at /, "debug serves the stack too");
});

t.test("syntax errors, errors in an included template and missing templates name the right file", async (t) => {
  captureLog(t);
  const app = makeApp();
  const syntax = await app.inject({ url: "/t/error-syntax.html" });
  t.equal(syntax.status, 500);
  t.match(syntax.text(), /Template error in error-syntax\.html, line 3/);
  const included = await app.inject({ url: "/t/error-include.html" });
  t.equal(included.status, 500);
  t.match(included.text(), /Template error in modules\/broken\.html, line 2/);
  const missing = await app.inject({ url: "/t/nope.html" });
  t.equal(missing.status, 500);
  t.match(missing.text(), /Template error in nope\.html/);
  const json = await app.inject({ url: "/t/error-syntax.html", headers: { accept: "application/json" } });
  t.match(json.json(), { status: 500, traceback: "Template error in error-syntax.html, line 3" });
});

t.test("TemplateError carries the template and line; a NunjucksLoader can be used directly", async (t) => {
  const loader = new NunjucksLoader({ path: TEMPLATES });
  t.equal(loader.render("plain.txt", { name: "x" }).trim(), "Hello x!");
  const err = t.throws(() => loader.render("error-syntax.html", {})) as TemplateError;
  t.ok(err instanceof TemplateError);
  t.equal(err.code, "E_TEMPLATE");
  t.equal(err.template, "error-syntax.html");
  t.equal(err.line, 3);
});

t.test("compiled templates are cached, except under debug (or compiledTemplateCache: false)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "typhoon-templates-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(TEMPLATES, dir, { recursive: true });
  const cached = makeApp({ templatePath: dir });
  const debug = makeApp({ templatePath: dir, debug: true });
  const off = makeApp({ templatePath: dir, compiledTemplateCache: false });
  for (const app of [cached, debug, off]) t.equal((await app.inject({ url: "/t/plain.txt" })).text().trim(), "Hello &lt;world&gt;!");
  writeFileSync(join(dir, "plain.txt"), "Bye {{ name }}!\n");
  t.equal((await cached.inject({ url: "/t/plain.txt" })).text().trim(), "Hello &lt;world&gt;!", "the cache keeps the compiled template");
  t.equal((await debug.inject({ url: "/t/plain.txt" })).text().trim(), "Bye &lt;world&gt;!", "debug reads the file again");
  t.equal((await off.inject({ url: "/t/plain.txt" })).text().trim(), "Bye &lt;world&gt;!");
});

t.test("another engine behind templateLoader: its render() and markSafe() are used, sync or async", async (t) => {
  const seen: string[] = [];
  const loader: TemplateLoader = {
    async render(name, ns) {
      seen.push(name);
      const xsrf = (ns["xsrfFormHtml"] as () => { html: string })();
      return `${name}|${String(ns["name"])}|${xsrf.html.slice(0, 13)}|${(ns["_"] as (m: string) => string)("Sign in")}`;
    },
    markSafe: (html) => ({ html }),
  };
  const res = await makeApp({ templateLoader: loader }).inject({ url: "/t/x.tpl", headers: { "accept-language": "es-ES" } });
  t.equal(res.status, 200);
  t.equal(res.text(), "x.tpl|<world>|<input type=\"|Entrar");
  t.same(seen, ["x.tpl"]);
});

t.test("without templatePath or templateLoader, render() is a 500 that says which setting is missing", async (t) => {
  const lines = captureLog(t);
  const res = await new Application([["/t/(.+)", TemplateHandler]]).inject({ url: "/t/a.html" });
  t.equal(res.status, 500);
  t.match(logText(lines), /Set the templatePath setting/);
});

t.test("nunjucks is loaded on the first render, not when typhoon is imported", async (t) => {
  const index = fileURLToPath(new URL("../../../core/index.ts", import.meta.url));
  const script = `
    import { createRequire } from "node:module";
    const { Application, RequestHandler } = await import(${JSON.stringify(index)});
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes("/nunjucks/"));
    const before = loaded();
    class H extends RequestHandler { get() { return this.render("plain.txt", { name: "x" }); } }
    const res = await new Application([["/", H]], { templatePath: ${JSON.stringify(TEMPLATES)} }).inject({ url: "/" });
    console.log(JSON.stringify({ before, after: loaded(), status: res.status }));`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { timeout: 60_000 }, (err, stdout) => {
      if (err !== null) reject(err);
      else resolve(stdout);
    });
  });
  t.same(JSON.parse(out.trim().split("\n").pop()!), { before: false, after: true, status: 200 });
});
