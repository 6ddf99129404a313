// The blog's flows on a real PostgreSQL server through `pg` (DATABASE_URL's path): Debian's
// postgresql package, installed if missing when running as root, started in a temporary
// directory on a loopback port and stopped afterwards. Skipped, with the reason, when it cannot be had.
import t from "tap";
import { openDatabase } from "../../scripts/blog/db.ts";
import { startPostgres } from "../helpers/postgres.ts";
import { blogFlows } from "./flows.ts";

// A browser, a database or a type-check: minutes on a loaded 2-core machine, not the default 120 s.
t.setTimeout(300_000);

t.test("the blog on a PostgreSQL server", async (t) => {
  const started = await startPostgres(t);
  if ("skip" in started) {
    t.plan(0, started.skip);
    return;
  }
  t.comment(started.server.version);
  const url = await started.server.createDatabase("blog_spec");
  // A subtest, so its teardowns (HTTP server, pool) run before the PostgreSQL server stops.
  await t.test("flows", async (t) => {
    const db = await openDatabase({ url });
    t.teardown(() => db.close());
    t.equal(db.kind, "postgres");
    const [row] = await db.query<{ version: string }>("SELECT version()");
    t.match(row!.version, /^PostgreSQL \d+/, "a real server answers");
    await blogFlows(t, db);
  });
});
