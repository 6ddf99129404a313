/**
 * `make blog-screenshot`: walks the blog in headless Chromium the way a first visitor does —
 * the home page sends them to sign up, they create the author, compose a post, publish it and
 * land on it — with real clicks and typing, then saves the entry page as docs/blog.png.
 * `walkBlog()` is also what spec/scripts/blog-browser.spec.ts runs.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Page } from "./browser.ts";

/** What the walk saw at each step. */
export interface WalkResult {
  /** The pages in order: sign-up form, compose form, the published entry. */
  readonly urls: string[];
  /** The title heading of the published entry, as the browser shows it. */
  readonly entryTitle: string;
  /** The entry body's text. */
  readonly entryText: string;
  /** The screenshot of the entry page. */
  readonly png: Buffer;
}

/** The post the walk publishes. */
export const WALK_POST = {
  title: "Hello from typhoon",
  markdown: "This post was written in **headless Chromium**: sign up, compose, publish.\n\n" +
    "- templates with inheritance and an include\n- Markdown by `marked`\n- data in PostgreSQL\n",
};

/** Sign-up → compose → view, through the forms, on the blog at `baseUrl`. */
export async function walkBlog(page: Page, baseUrl: string): Promise<WalkResult> {
  const urls: string[] = [];
  const here = (): Promise<string> => page.evaluate<string>("location.pathname");
  // A fresh blog redirects "/" → /compose → /auth/login → /auth/create.
  await page.goto(`${baseUrl}/`);
  urls.push(await here());
  await page.type("input[name=email]", "author@example.com");
  await page.type("input[name=name]", "Ada Author");
  await page.type("input[name=password]", "correct horse battery staple");
  await page.clickAndWait("form input[type=submit]");
  // After sign-up, "/" has no entries yet and sends the author to compose.
  urls.push(await here());
  await page.type("input[name=title]", WALK_POST.title);
  await page.type("textarea[name=markdown]", WALK_POST.markdown);
  await page.clickAndWait("form input[type=submit]");
  urls.push(await here());
  const entryTitle = await page.evaluate<string>("document.querySelector('.entry h1').textContent.trim()");
  const entryText = await page.evaluate<string>("document.querySelector('.entry .body').innerText");
  const png = await page.screenshot();
  return { urls, entryTitle, entryText, png };
}

// Run directly: an embedded-database blog on a free port, the walk, docs/blog.png.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { openDatabase } = await import("./db.ts");
  const { makeBlogApp } = await import("./app.ts");
  const { findChromium, launch } = await import("./browser.ts");
  const binary = findChromium();
  if (binary === null) {
    console.error("chromium is not installed (Debian: apt-get install chromium)");
    process.exit(2);
  }
  const db = await openDatabase();
  const { app, context } = makeBlogApp({ db, cookieSecret: "walk-secret" });
  const server = await app.listen(0, "127.0.0.1");
  const { port } = server.address() as { port: number };
  const browser = await launch(binary);
  try {
    const result = await walkBlog(browser.page, `http://127.0.0.1:${port}`);
    const out = fileURLToPath(new URL("../../docs/blog.png", import.meta.url));
    writeFileSync(out, result.png);
    console.log(`walked ${result.urls.join(" → ")}; "${result.entryTitle}" published; screenshot ${out} (${result.png.length} bytes)`);
  } finally {
    await browser.close();
    await server.stop();
    await context.passwords.shutdown();
    await db.close();
  }
}
