/**
 * `make new-app NAME=myapp DIR=../myapp`: creates a standalone typhoon app — package.json,
 * tsconfig, Makefile (run, test, doctor, flame, heap, bench), app, handlers, thread-pool tasks,
 * tap specs, README — that depends on this checkout of typhoon through a relative `file:` path.
 *
 *   node --import tsx scripts/new-app.ts --name myapp --dir ../myapp [--template api|site]
 *
 * It refuses a folder that exists and is not empty (exit 1), and writes nothing outside `--dir`.
 * The generated files are the templates in `scripts/templates/app/` (the API shape) or
 * `scripts/templates/site/` (`--template site`: a server-rendered site, the blog's shape) with
 * `{{name}}`-style placeholders filled in (`{{ expression }}` with spaces is template syntax, left alone).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The typhoon checkout this script belongs to. */
export const TYPHOON_ROOT = fileURLToPath(new URL("..", import.meta.url));
const TEMPLATES = fileURLToPath(new URL("./templates/", import.meta.url));

/** The generated app's devDependencies, at the versions typhoon itself uses. */
const DEV_DEPENDENCIES = ["@types/node", "autocannon", "clinic", "tap", "tsx", "typescript"] as const;

/** Template file (under `scripts/templates/`) → path in the new app: the API shape (`app/`). */
const FILES: Record<string, string> = {
  "app/app.ts.tmpl": "app.ts",
  "app/server.ts.tmpl": "server.ts",
  "app/tasks.ts.tmpl": "tasks.ts",
  "app/handlers/hello.ts.tmpl": "handlers/hello.ts",
  "app/spec/app.spec.ts.tmpl": "spec/app.spec.ts",
  "app/spec/server.spec.ts.tmpl": "spec/server.spec.ts",
  "app/spec/tasks.spec.ts.tmpl": "spec/tasks.spec.ts",
  "app/scripts/bench.ts.tmpl": "scripts/bench.ts",
  "app/scripts/autocannon.d.ts.tmpl": "scripts/autocannon.d.ts",
  "app/tsconfig.json.tmpl": "tsconfig.json",
  "app/Makefile.tmpl": "Makefile",
  "app/README.md.tmpl": "README.md",
  "app/gitignore.tmpl": ".gitignore",
};

/** Only with a checkout whose public surface has the thread pool. */
const EXECUTOR_FILES: Record<string, string> = {
  "app/handlers/work.ts.tmpl": "handlers/work.ts",
  "app/spec/work.spec.ts.tmpl": "spec/work.spec.ts",
};

/** The server-rendered shape (`TEMPLATE=site`, `site/`): the blog's templates, static files, locale, login. */
const SITE_FILES: Record<string, string> = {
  "site/app.ts.tmpl": "app.ts",
  "site/server.ts.tmpl": "server.ts",
  "site/handlers/pages.ts.tmpl": "handlers/pages.ts",
  "site/templates/base.html.tmpl": "templates/base.html",
  "site/templates/home.html.tmpl": "templates/home.html",
  "site/templates/note.html.tmpl": "templates/note.html",
  "site/templates/compose.html.tmpl": "templates/compose.html",
  "site/templates/login.html.tmpl": "templates/login.html",
  "site/locale/es_ES.csv.tmpl": "locale/es_ES.csv",
  "site/static/site.css.tmpl": "static/site.css",
  "site/spec/app.spec.ts.tmpl": "spec/app.spec.ts",
  "site/Makefile.tmpl": "Makefile",
  "site/README.md.tmpl": "README.md",
  "app/tsconfig.json.tmpl": "tsconfig.json",
  "app/gitignore.tmpl": ".gitignore",
};

/** The shapes `make new-app TEMPLATE=...` offers. */
export type AppTemplate = "api" | "site";

/** What {@link createApp} needs. */
export interface NewAppOptions {
  /** The package name: lower case letters, digits, `-`, `_`, `.`; starts with a letter or digit. */
  name: string;
  /** The folder to create (or an empty existing one). */
  dir: string;
  /** The typhoon checkout to depend on (default: this one). */
  typhoonRoot?: string;
  /** `api` (default: JSON and text handlers, the thread pool) or `site` (templates, forms, login). */
  template?: AppTemplate;
}

/** A refusal the CLI reports as one line and exit code 1. */
export class NewAppError extends Error {
  override name = "NewAppError";
}

/**
 * Writes a new app into `options.dir` and returns the list of files written (relative paths).
 *
 * @example
 * createApp({ name: "myapp", dir: "../myapp" }); // then: cd ../myapp && make test
 */
export function createApp(options: NewAppOptions): string[] {
  const { name } = options;
  if (!/^[a-z0-9][a-z0-9._-]{0,213}$/.test(name)) {
    throw new NewAppError(`invalid app name "${name}": use lower case letters, digits, "-", "_" or "." (an npm package name)`);
  }
  const dir = resolve(options.dir);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new NewAppError(`${dir} exists and is not a folder`);
    if (readdirSync(dir).length > 0) throw new NewAppError(`${dir} is not empty; refusing to overwrite it`);
  }
  const root = resolve(options.typhoonRoot ?? TYPHOON_ROOT);
  // Relative, so the app and the checkout can move together; make and npm both read it.
  const typhoon = relative(dir, root) || ".";
  if (/\s/.test(typhoon)) throw new NewAppError(`the path from ${dir} to typhoon (${typhoon}) has white space, which make cannot handle`);

  const withExecutor = exportsThreadPool(root);
  const values: Record<string, string> = {
    name,
    typhoon,
    workImport: withExecutor ? `import { FibHandler } from "./handlers/work.ts";\n` : "",
    workRoute: withExecutor ? `    ["/fib/(\\\\d+)", FibHandler],\n` : "",
    workRow: withExecutor ? "| `handlers/work.ts` | `/fib/<n>` computed on the thread pool (`ThreadPoolExecutor`) |\n" : "",
  };
  const template = options.template ?? "api";
  if (template !== "api" && template !== "site") throw new NewAppError(`unknown template "${String(template)}": use api or site`);
  const files = template === "site" ? SITE_FILES : { ...FILES, ...(withExecutor ? EXECUTOR_FILES : {}) };

  const written: string[] = [];
  const write = (path: string, text: string): void => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
    written.push(path);
  };
  write("package.json", `${JSON.stringify(packageJson(name, typhoon, root), null, 2)}\n`);
  for (const [source, target] of Object.entries(files)) {
    write(target, fill(readFileSync(join(TEMPLATES, source), "utf8"), values));
  }
  return written;
}

function packageJson(name: string, typhoon: string, root: string): Record<string, unknown> {
  const ours = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { devDependencies?: Record<string, string> };
  const devDependencies: Record<string, string> = {};
  for (const dep of DEV_DEPENDENCIES) {
    const version = ours.devDependencies?.[dep];
    if (version === undefined) throw new NewAppError(`typhoon's package.json has no devDependency ${dep} to copy`);
    devDependencies[dep] = version;
  }
  return {
    name,
    version: "0.1.0",
    private: true,
    type: "module",
    engines: { node: ">=20" },
    scripts: { start: "node --import tsx server.ts", test: "tap", typecheck: "tsc --noEmit" },
    dependencies: { typhoon: `file:${typhoon}` },
    devDependencies,
  };
}

/** Whether the checkout's public surface exports `ThreadPoolExecutor` (the executor has landed). */
function exportsThreadPool(root: string): boolean {
  const index = join(root, "core", "index.ts");
  return existsSync(index) && /\bThreadPoolExecutor\b/.test(readFileSync(index, "utf8"));
}

function fill(text: string, values: Record<string, string>): string {
  return text.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => values[key] ?? whole);
}

function parseArgs(argv: string[]): { name: string; dir: string; template: AppTemplate } {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const name = get("--name");
  if (name === undefined || name === "") throw new NewAppError("usage: new-app.ts --name <name> [--dir <folder>] [--template api|site] (make new-app NAME=myapp DIR=../myapp TEMPLATE=site)");
  const template = get("--template") || "api";
  if (template !== "api" && template !== "site") throw new NewAppError(`unknown template "${template}": use api or site`);
  return { name, dir: get("--dir") || join("..", name), template };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { name, dir, template } = parseArgs(process.argv.slice(2));
    const written = createApp({ name, dir, template });
    const shown = relative(process.cwd(), resolve(dir)) || ".";
    console.log(`Created ${name} in ${shown} (${written.length} files). Next:\n\n  cd ${shown}\n  make test\n  make run\n`);
  } catch (err) {
    if (!(err instanceof NewAppError)) throw err;
    console.error(`new-app: ${err.message}`);
    process.exitCode = 1;
  }
}
