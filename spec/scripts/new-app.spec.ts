/**
 * `scripts/new-app.ts`: what it writes (in-process, through `createApp`), and what the CLI users
 * run refuses, with its exit code. (The generated app's own `make test` is run by
 * `scripts/check-new-app.sh`: it installs packages and builds typhoon, longer than a spec should take.)
 */
import t from "tap";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createApp } from "../../scripts/new-app.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SCRIPT = fileURLToPath(new URL("../../scripts/new-app.ts", import.meta.url));

interface Run { code: number | null; stdout: string; stderr: string }

function newApp(...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, ["--import", "tsx", SCRIPT, ...args], { cwd: ROOT, timeout: 20_000 }, (err, stdout, stderr) => {
      done({ code: err === null ? 0 : typeof err.code === "number" ? err.code : null, stdout, stderr });
    });
  });
}

const base = mkdtempSync(join(tmpdir(), "typhoon-new-app-spec-"));
t.teardown(() => rmSync(base, { recursive: true, force: true }));

t.test("generates a standalone app that depends on this checkout", async (t) => {
  const dir = join(base, "myapp");
  const written = createApp({ name: "myapp", dir });
  t.ok(written.includes("package.json") && written.includes("Makefile"), "createApp lists what it wrote");
  for (const file of ["package.json", "tsconfig.json", "Makefile", "README.md", ".gitignore", "app.ts", "server.ts",
    "tasks.ts", "handlers/hello.ts", "spec/app.spec.ts", "spec/server.spec.ts", "spec/tasks.spec.ts", "scripts/bench.ts"]) {
    t.ok(existsSync(join(dir, file)), `${file} is written`);
  }

  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
    name: string; type: string; dependencies: Record<string, string>; devDependencies: Record<string, string>;
  };
  t.equal(pkg.name, "myapp");
  t.equal(pkg.type, "module");
  const link = /^file:(.+)$/.exec(pkg.dependencies["typhoon"] ?? "");
  t.ok(link, "typhoon is a file: dependency");
  t.equal(resolve(dir, link![1]!), resolve(ROOT), "the file: path leads back to this checkout");
  t.notOk(link![1]!.startsWith("/"), "the path is relative, so app and checkout can move together");

  const ours = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
  for (const dep of ["tap", "tsx", "typescript", "@types/node", "clinic", "autocannon"]) {
    t.equal(pkg.devDependencies[dep], ours.devDependencies[dep], `${dep} at typhoon's own version`);
  }

  const makefile = readFileSync(join(dir, "Makefile"), "utf8");
  for (const target of ["run", "test", "doctor", "flame", "heap", "bench"]) {
    t.match(makefile, new RegExp(`^${target}: `, "m"), `the Makefile has ${target}`);
  }
  t.match(makefile, `TYPHOON := ${link![1]}`, "the Makefile builds the checkout that package.json names");
  t.notMatch(readFileSync(join(dir, "app.ts"), "utf8"), /\{\{\w+\}\}/, "no placeholder is left unfilled");
  t.match(readFileSync(join(dir, "handlers/hello.ts"), "utf8"), 'this.write("Hello from myapp")');
});

t.test("refuses a folder that is not empty, exits 1 and leaves it as it was", async (t) => {
  const dir = join(base, "taken");
  mkdirSync(dir);
  writeFileSync(join(dir, "notes.txt"), "mine");
  const run = await newApp("--name", "taken", "--dir", dir);
  t.equal(run.code, 1);
  t.match(run.stderr, /is not empty; refusing to overwrite it/);
  t.same(readdirSync(dir), ["notes.txt"]);
  t.equal(readFileSync(join(dir, "notes.txt"), "utf8"), "mine");
});

t.test("fills a folder that exists but is empty", async (t) => {
  const dir = join(base, "empty");
  mkdirSync(dir);
  createApp({ name: "empty", dir });
  t.ok(readdirSync(dir).includes("Makefile"));
});

t.test("refuses a name npm would not accept, and a missing --name", async (t) => {
  const [bad, missing] = await Promise.all([newApp("--name", "My App", "--dir", join(base, "bad")), newApp()]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /invalid app name "My App"/);
  t.notOk(existsSync(join(base, "bad")), "nothing was created");
  t.equal(missing.code, 1);
  t.match(missing.stderr, /usage: new-app\.ts --name/);
});
