/**
 * `make blog`: Tornado's blog demo on http://127.0.0.1:8888/ (PORT=). Data in an embedded
 * PostgreSQL (PGlite, in memory; BLOG_DATA_DIR= keeps it on disk), or on a PostgreSQL server
 * with DATABASE_URL=postgres://user:password@host:5432/blog. COOKIE_SECRET= sets the secret
 * of the login cookie (a random one per start otherwise: logins then last until a restart).
 */
import { randomBytes } from "node:crypto";
import { IOLoop } from "../../core/index.ts";
import { openDatabase } from "./db.ts";
import { makeBlogApp } from "./app.ts";

const port = Number(process.env["PORT"] ?? 8888);
const db = await openDatabase({ url: process.env["DATABASE_URL"], dataDir: process.env["BLOG_DATA_DIR"] });
const { app, context } = makeBlogApp({
  db,
  cookieSecret: process.env["COOKIE_SECRET"] ?? randomBytes(32).toString("hex"),
  settings: { debug: process.env["DEBUG"] === "1" },
});
const server = await app.listen(port, "127.0.0.1");
console.log(`blog on http://127.0.0.1:${port}/ (database: ${db.kind}${db.kind === "pglite" && !process.env["BLOG_DATA_DIR"] ? ", in memory" : ""})`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void (async () => {
      await server.stop();
      await context.passwords.shutdown();
      await db.close();
      IOLoop.current().stop();
    })();
  });
}
await IOLoop.current().start();
