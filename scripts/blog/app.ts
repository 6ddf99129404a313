/**
 * Tornado's blog demo (demos/blog) on typhoon: the same routes and form fields, templates with
 * a base layout and an entry component (Tornado's `EntryModule` becomes an include), Markdown
 * entries, XSRF-protected forms, a signed-cookie login with `@authenticated`, scrypt password
 * hashing on the `ThreadPoolExecutor`, and an Atom feed. Data in PostgreSQL (see db.ts).
 */
import { fileURLToPath } from "node:url";
import { Marked } from "marked";
import { Application, HTTPError, RequestHandler, ThreadPoolExecutor, authenticated, loadTranslations, url } from "../../core/index.ts";
import type { AppSettings } from "../../core/index.ts";
import type { Database, Row } from "./db.ts";

/** An author as stored. */
export interface Author extends Row {
  id: number;
  email: string;
  name: string;
  hashed_password: string;
}

/** An entry as stored. */
export interface Entry extends Row {
  id: number;
  author_id: number;
  slug: string;
  title: string;
  markdown: string;
  html: string;
  published: Date;
  updated: Date;
}

/** What the blog's handlers share: the database and the password-hashing threads. */
export interface BlogContext {
  readonly db: Database;
  readonly passwords: ThreadPoolExecutor;
}

const USER_COOKIE = "blogdemo_user";
const markdown = new Marked({ gfm: true, async: false });

/** The database rows, the password pool and the typed query helpers of every blog handler. */
class BaseHandler extends RequestHandler {
  protected blog!: BlogContext;

  override initialize(context: unknown): void {
    this.blog = context as BlogContext;
  }

  /** Rows of a query. */
  protected query<T extends Row>(sql: string, ...params: unknown[]): Promise<T[]> {
    return this.blog.db.query<T>(sql, params);
  }

  /** The one row of a query; 404 when there is none. */
  protected async queryOne<T extends Row>(sql: string, ...params: unknown[]): Promise<T> {
    const rows = await this.query<T>(sql, ...params);
    if (rows.length === 0) throw new HTTPError(404);
    return rows[0]!;
  }

  // getCurrentUser() is synchronous in Tornado's design, so the demo loads the author here.
  override async prepare(): Promise<void> {
    const id = this.getSignedCookie(USER_COOKIE);
    if (id !== null && /^\d+$/.test(id)) {
      const rows = await this.query<Author>("SELECT * FROM authors WHERE id = $1", Number(id));
      this.currentUser = rows[0] ?? null;
    } else this.currentUser = null;
  }

  protected async anyAuthorExists(): Promise<boolean> {
    return (await this.query("SELECT id FROM authors LIMIT 1")).length > 0;
  }

  /** `next` when it is a path on this site (never another host: no open redirect), else `/`. */
  protected nextUrl(): string {
    const next = this.getArgument("next", "/");
    return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
  }
}

class HomeHandler extends BaseHandler {
  async get(): Promise<void> {
    const entries = await this.query<Entry>("SELECT * FROM entries ORDER BY published DESC LIMIT 5");
    if (entries.length === 0) return this.redirect("/compose");
    await this.render("home.html", { entries });
  }
}

class EntryHandler extends BaseHandler {
  async get(slug: string): Promise<void> {
    const entry = await this.queryOne<Entry>("SELECT * FROM entries WHERE slug = $1", slug);
    await this.render("entry.html", { entry });
  }
}

class ArchiveHandler extends BaseHandler {
  async get(): Promise<void> {
    const entries = await this.query<Entry>("SELECT * FROM entries ORDER BY published DESC");
    await this.render("archive.html", { entries });
  }
}

class FeedHandler extends BaseHandler {
  async get(): Promise<void> {
    const entries = await this.query<Entry>("SELECT * FROM entries ORDER BY published DESC LIMIT 10");
    const updated = entries.reduce((latest, e) => (e.updated > latest ? e.updated : latest), entries[0]?.updated ?? new Date());
    this.setHeader("Content-Type", "application/atom+xml; charset=UTF-8");
    await this.render("feed.xml", { entries, updated });
  }
}

// @authenticated's type does not fit an `async` method (it may return undefined, or a promise
// of one): the methods return the work's promise as `unknown`, which the lifecycle awaits.
class ComposeHandler extends BaseHandler {
  @authenticated
  get(): unknown {
    return this.#form();
  }

  @authenticated
  post(): unknown {
    return this.#save();
  }

  async #form(): Promise<void> {
    const id = this.getArgument("id", null);
    const entry = id === null ? null : await this.queryOne<Entry>("SELECT * FROM entries WHERE id = $1", toId(id));
    await this.render("compose.html", { entry });
  }

  async #save(): Promise<void> {
    const id = this.getArgument("id", null);
    const title = this.getArgument("title");
    const text = this.getArgument("markdown");
    const html = markdown.parse(text) as string;
    let slug: string;
    if (id !== null) {
      const entry = await this.queryOne<Entry>("SELECT * FROM entries WHERE id = $1", toId(id));
      slug = entry.slug;
      await this.query("UPDATE entries SET title = $1, markdown = $2, html = $3, updated = CURRENT_TIMESTAMP WHERE id = $4",
        title, text, html, entry.id);
    } else {
      slug = slugify(title);
      while ((await this.query("SELECT id FROM entries WHERE slug = $1", slug)).length > 0) slug += "-2";
      const author = this.currentUser as Author;
      await this.query(
        "INSERT INTO entries (author_id, title, slug, markdown, html, published, updated) " +
        "VALUES ($1, $2, $3, $4, $5, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        author.id, title, slug, text, html);
    }
    this.redirect(`/entry/${slug}`);
  }
}

class AuthCreateHandler extends BaseHandler {
  async get(): Promise<void> {
    await this.render("create_author.html");
  }

  async post(): Promise<void> {
    if (await this.anyAuthorExists()) throw new HTTPError(400, "author already created");
    // scrypt holds a core for ~50 ms: on a worker thread, the loop keeps serving meanwhile.
    const hashed = await this.blog.passwords.submit<string>("hashPassword", this.getArgument("password"));
    const [author] = await this.query<Author>(
      "INSERT INTO authors (email, name, hashed_password) VALUES ($1, $2, $3) RETURNING id",
      this.getArgument("email"), this.getArgument("name"), hashed);
    this.setSignedCookie(USER_COOKIE, String(author!.id), { sameSite: "Lax", httpOnly: true });
    this.redirect(this.nextUrl());
  }
}

class AuthLoginHandler extends BaseHandler {
  async get(): Promise<void> {
    // No author yet: the first visitor creates one.
    if (!(await this.anyAuthorExists())) return this.redirect("/auth/create");
    await this.render("login.html", { error: null });
  }

  async post(): Promise<void> {
    const [author] = await this.query<Author>("SELECT * FROM authors WHERE email = $1", this.getArgument("email"));
    if (author === undefined) return this.render("login.html", { error: "email not found" });
    const ok = await this.blog.passwords.submit<boolean>("checkPassword", this.getArgument("password"), author.hashed_password);
    if (!ok) return this.render("login.html", { error: "incorrect password" });
    this.setSignedCookie(USER_COOKIE, String(author.id), { sameSite: "Lax", httpOnly: true });
    this.redirect(this.nextUrl());
  }
}

class AuthLogoutHandler extends BaseHandler {
  get(): void {
    this.clearCookie(USER_COOKIE);
    this.redirect(this.nextUrl());
  }
}

/** Tornado's slug: NFKD, non-word runs to spaces, lower case, dashes, ASCII only; "entry" if empty. */
export function slugify(title: string): string {
  const words = title.normalize("NFKD").replace(/[^\p{L}\p{N}_]+/gu, " ").toLowerCase().trim().split(/\s+/);
  const slug = words.join("-").replace(/[^\x00-\x7f]/g, "").replace(/^-+|-+$/g, "").slice(0, 90);
  return slug === "" ? "entry" : slug;
}

function toId(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new HTTPError(404);
  return Number(value);
}

/** Options of {@link makeBlogApp}. */
export interface BlogOptions {
  db: Database;
  /** Threads for password hashing (default: a pool of 2 on ./tasks.ts). */
  passwords?: ThreadPoolExecutor;
  /** Signed-cookie secret; set your own random value in production. */
  cookieSecret: string;
  title?: string;
  /** Extra settings (debug, serveTraceback, ...). */
  settings?: AppSettings;
}

/** The blog application, with its templates, static files and Spanish translations. */
export function makeBlogApp(options: BlogOptions): { app: Application; context: BlogContext } {
  loadTranslations(fileURLToPath(new URL("./locale/", import.meta.url)));
  const passwords = options.passwords ?? new ThreadPoolExecutor({ module: new URL("./tasks.ts", import.meta.url), maxWorkers: 2 });
  const context: BlogContext = { db: options.db, passwords };
  const app = new Application([
    url("/", HomeHandler, context, "home"),
    url("/archive", ArchiveHandler, context, "archive"),
    url("/feed", FeedHandler, context, "feed"),
    url("/entry/([^/]+)", EntryHandler, context, "entry"),
    url("/compose", ComposeHandler, context, "compose"),
    url("/auth/create", AuthCreateHandler, context, "create"),
    url("/auth/login", AuthLoginHandler, context, "login"),
    url("/auth/logout", AuthLogoutHandler, context, "logout"),
  ], {
    blogTitle: options.title ?? "typhoon Blog",
    templatePath: fileURLToPath(new URL("./templates/", import.meta.url)),
    staticPath: fileURLToPath(new URL("./static/", import.meta.url)),
    cookieSecret: options.cookieSecret,
    xsrfCookies: true,
    loginUrl: "/auth/login",
    ...options.settings,
  });
  return { app, context };
}
