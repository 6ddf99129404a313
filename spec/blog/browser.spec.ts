// A headless Chromium (Debian's chromium) walks the blog with real clicks and typing:
// sign-up → compose → view. Skipped, with the reason, when Chromium is not installed.
import t from "tap";
import { findChromium, launch } from "../../scripts/blog/browser.ts";
import { openDatabase } from "../../scripts/blog/db.ts";
import { makeBlogApp } from "../../scripts/blog/app.ts";
import { WALK_POST, walkBlog } from "../../scripts/blog/walk.ts";

// A browser, a database or a type-check: minutes on a loaded 2-core machine, not the default 120 s.
t.setTimeout(300_000);

const binary = findChromium();

t.test("sign-up → compose → view in headless Chromium", {
  skip: binary === null ? "chromium is not installed (Debian: apt-get install chromium)" : false,
}, async (t) => {
  if (binary === null) return;
  const db = await openDatabase();
  t.teardown(() => db.close());
  const { app, context } = makeBlogApp({ db, cookieSecret: "browser-spec" });
  const server = await app.listen(0, "127.0.0.1");
  t.teardown(async () => {
    await server.stop();
    await context.passwords.shutdown();
  });
  const browser = await launch(binary);
  t.teardown(() => browser.close());
  const { port } = server.address() as { port: number };
  const result = await walkBlog(browser.page, `http://127.0.0.1:${port}`);
  t.same(result.urls, ["/auth/create", "/compose", "/entry/hello-from-typhoon"], "the pages a first visitor goes through");
  t.equal(result.entryTitle, WALK_POST.title);
  t.match(result.entryText, /This post was written in headless Chromium/, "Markdown rendered (bold markers gone)");
  t.same([...result.png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG");
  t.equal(result.png.readUInt32BE(16), 1000, "the viewport's width");
  const [author] = await db.query<{ email: string }>("SELECT email FROM authors");
  t.equal(author?.email, "author@example.com", "the form the browser filled reached the database");
});
