/**
 * The blog's PostgreSQL access: one small interface over two drivers, so the same SQL runs on
 * the embedded PGlite (PostgreSQL compiled to WebAssembly, nothing to install) and on a real
 * server through `pg` when `DATABASE_URL` is set. Both drivers are loaded on first use.
 */
import { readFileSync } from "node:fs";

/** A row as the drivers return it: column name → value (`TIMESTAMPTZ` as `Date`). */
export type Row = Record<string, unknown>;

/** The few operations the blog needs. Placeholders are PostgreSQL's `$1, $2, ...`. */
export interface Database {
  /** `pglite` (embedded) or `postgres` (a server through `pg`). */
  readonly kind: "pglite" | "postgres";
  /** Rows of one statement. */
  query<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a script of several statements (no parameters). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens the blog's database and creates its tables if needed: a PostgreSQL server when `url`
 * is given (`postgres://user:pass@host:5432/db`), else PGlite, in memory or in `dataDir`.
 */
export async function openDatabase(options: { url?: string | undefined; dataDir?: string | undefined } = {}): Promise<Database> {
  const db = options.url ? await openServer(options.url) : await openEmbedded(options.dataDir);
  await db.exec(readFileSync(new URL("./schema.sql", import.meta.url), "utf8"));
  return db;
}

async function openEmbedded(dataDir: string | undefined): Promise<Database> {
  const { PGlite } = await import("@electric-sql/pglite");
  const pg = await PGlite.create(dataDir ?? "memory://");
  return {
    kind: "pglite",
    async query<T extends Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      return (await pg.query<T>(sql, [...params])).rows;
    },
    async exec(sql: string): Promise<void> {
      await pg.exec(sql);
    },
    close: () => pg.close(),
  };
}

async function openServer(url: string): Promise<Database> {
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle connection the server drops (a restart) is replaced on the next query; without a
  // listener the pool's "error" event would stop the process.
  pool.on("error", (err) => { console.error(`blog database: idle connection lost: ${err.message}`); });
  return {
    kind: "postgres",
    async query<T extends Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      return (await pool.query<T>(sql, [...params])).rows;
    },
    async exec(sql: string): Promise<void> {
      await pool.query(sql);
    },
    close: () => pool.end(),
  };
}
