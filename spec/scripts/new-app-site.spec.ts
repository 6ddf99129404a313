/**
 * `make new-app TEMPLATE=site`: the server-rendered shape is written, type-checks, and its own
 * specs pass. The generated app is put inside this checkout (so `tap`, `tsx` and `nunjucks`
 * resolve from its node_modules) with `from "typhoon"` pointed at core/index.ts: the same code
 * `make test` in a real generated app runs against typhoon's build.
 */
import t from "tap";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { createApp } from "../../scripts/new-app.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Run { code: number | null; stdout: string; stderr: string }

function run(command: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(command, args, { cwd, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : typeof err.code === "number" ? err.code : null, stdout, stderr });
    });
  });
}

// A browser, a database or a type-check: minutes on a loaded 2-core machine, not the default 120 s.
t.setTimeout(300_000);

t.test("TEMPLATE=site writes a site that type-checks and passes its own specs", async (t) => {
  const dir = mkdtempSync(join(ROOT, ".new-app-site-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const written = createApp({ name: "mysite", dir, template: "site" });
  for (const file of ["package.json", "tsconfig.json", "Makefile", "README.md", ".gitignore", "app.ts", "server.ts", "handlers/pages.ts",
    "templates/base.html", "templates/home.html", "templates/note.html", "templates/compose.html", "templates/login.html",
    "locale/es_ES.csv", "static/site.css", "spec/app.spec.ts"]) {
    t.ok(written.includes(file) && existsSync(join(dir, file)), `${file} is written`);
  }
  t.notOk(written.includes("tasks.ts"), "the API shape's files are not");
  const base = readFileSync(join(dir, "templates/base.html"), "utf8");
  t.match(base, /\{\{ staticUrl\("site\.css"\) \}\}/, "template syntax with spaces is left for nunjucks");
  t.match(readFileSync(join(dir, "app.ts"), "utf8"), /siteTitle: "mysite"/, "{{name}} is filled in");
  t.match(readFileSync(join(dir, "Makefile"), "utf8"), /^dev: /m, "the Makefile has make dev");

  // Point the app at this checkout's sources instead of the package's build.
  for (const file of ["app.ts", "server.ts", "handlers/pages.ts"]) {
    const path = join(dir, file);
    const index = relative(dirname(path), join(ROOT, "core/index.ts")).split("\\").join("/");
    writeFileSync(path, readFileSync(path, "utf8").replace(/from "typhoon"/g, `from "${index.startsWith(".") ? index : `./${index}`}"`));
  }
  const tsc = await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", "tsconfig.json"], dir);
  t.equal(tsc.code, 0, `the generated app type-checks${tsc.code === 0 ? "" : `:\n${tsc.stdout}${tsc.stderr}`}`);
  const specs = await run(process.execPath, ["--import", "tsx", "spec/app.spec.ts"], dir);
  t.equal(specs.code, 0, `its specs pass${specs.code === 0 ? "" : `:\n${specs.stdout.slice(-3000)}${specs.stderr.slice(-2000)}`}`);
  t.match(specs.stdout, /^ok \d+ - sign in, post a note/m);
  t.notMatch(specs.stdout, /^not ok/m);
});

t.test("an unknown template is refused", async (t) => {
  t.throws(() => createApp({ name: "x", dir: join(ROOT, ".never-written"), template: "cli" as "api" }), /unknown template "cli"/);
  t.notOk(existsSync(join(ROOT, ".never-written")));
});
