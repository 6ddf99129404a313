// The blog's flows on the embedded PostgreSQL (PGlite): always run, nothing to install.
import t from "tap";
import { openDatabase } from "../../scripts/blog/db.ts";
import { blogFlows } from "./flows.ts";

// A browser, a database or a type-check: minutes on a loaded 2-core machine, not the default 120 s.
t.setTimeout(300_000);

t.test("the blog on PGlite", async (t) => {
  const db = await openDatabase();
  t.teardown(() => db.close());
  t.equal(db.kind, "pglite");
  await blogFlows(t, db);
});
