/**
 * Debug-mode autoreload, the supervisor's side (Tornado's `autoreload`, without its restart of
 * the whole process): which files to watch, and a watcher that reports a change once the
 * editor has finished saving. The supervisor (`supervisor.ts`) answers a change with the same
 * rolling reload as SIGHUP, so no request fails while the developer saves.
 *
 * Which files: the main script, every module a child loaded that belongs to the app (under the
 * app's root, the nearest folder above the main script with a `package.json`, and not under
 * `node_modules`), and everything under the template folders. The children report the modules
 * they load through a module-loading hook (`autoreload-child.ts`), so a file the app really
 * imports is watched, and nothing else.
 *
 * How: one non-recursive `fs.watch` per folder (inotify on Linux), filtered by file name.
 * Watching the folder rather than the file survives editors that save by writing a new file and
 * renaming it over the old one; recursive `fs.watch` is not used because it is unreliable on
 * Linux before Node 22 (it walks the tree itself and misses folders created later).
 */
import { existsSync, readdirSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { log } from "../log.ts";
import { CHILD_MESSAGE } from "./handoff.ts";
import type { AutoreloadSpec } from "./options.ts";

/** The message a child sends with the URLs of modules it loaded. */
export const MODULES_MESSAGE = "modules";

/** Quiet time after the last file event before a change is reported (ms): editors save in several writes. */
const SETTLE_MS = 100;

/**
 * Whether an app reloads on changes, and what it watches: `autoreload` when set, else `debug`
 * (Tornado's rule). Implied by `debug` only outside a test runner, so a spec that serves a debug
 * app in its own process is not turned into a supervisor of copies of itself.
 */
export function autoreloadSpec(autoreload: boolean | undefined, debug: boolean | undefined, templatePath: unknown): AutoreloadSpec | undefined {
  const on = autoreload ?? (debug === true && !underTestRunner());
  if (!on) return undefined;
  return { trees: typeof templatePath === "string" && templatePath !== "" ? [resolve(templatePath)] : [] };
}

/** tap, `node --test`, Jest and Vitest each mark the processes that run test files. */
function underTestRunner(): boolean {
  const env = process.env;
  return env["TAP"] === "1" || env["NODE_TEST_CONTEXT"] !== undefined || env["JEST_WORKER_ID"] !== undefined || env["VITEST"] !== undefined;
}

/** The `execArgv` of a child that reports the modules it loads: this process's, plus the hook. */
export function reportingExecArgv(): string[] {
  const entry = new URL(import.meta.url.endsWith(".ts") ? "./autoreload-child.ts" : "./autoreload-child.js", import.meta.url);
  return [...process.execArgv, "--import", entry.href];
}

/** The module URLs in a child's `modules` message, or `null` for any other message. */
export function reportedModules(message: unknown): string[] | null {
  if (typeof message !== "object" || message === null) return null;
  const { [CHILD_MESSAGE]: kind, urls } = message as Record<string, unknown>;
  if (kind !== MODULES_MESSAGE || !Array.isArray(urls)) return null;
  return urls.filter((url): url is string => typeof url === "string");
}

/** The app's root: the nearest folder at or above `file`'s with a `package.json`, else `file`'s own. */
export function appRoot(file: string): string {
  const start = dirname(resolve(file));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) return start;
  }
}

interface WatchedFolder {
  readonly watcher: FSWatcher;
  /** The names watched in this folder, or `null`: every entry (a template folder). */
  readonly names: Set<string> | null;
}

/**
 * Watches an app's source files and template folders; calls `onChange` with the changed paths
 * once no event came for {@link SETTLE_MS}.
 */
export class SourceWatcher {
  readonly #root: string;
  readonly #onChange: (paths: string[]) => void;
  readonly #folders = new Map<string, WatchedFolder>();
  readonly #changed = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** `root`: only modules under it (and outside `node_modules`) are the app's. */
  constructor(root: string, onChange: (paths: string[]) => void) {
    this.#root = resolve(root);
    this.#onChange = onChange;
  }

  /** How many files and folders are watched. */
  get size(): number {
    let n = 0;
    for (const { names } of this.#folders.values()) n += names === null ? 1 : names.size;
    return n;
  }

  /** Watches a module (a `file:` URL or a path) if it is one of the app's; returns whether it is. */
  addModule(urlOrPath: string): boolean {
    let path: string;
    try {
      path = urlOrPath.startsWith("file:") ? fileURLToPath(stripQuery(urlOrPath)) : resolve(urlOrPath);
    } catch {
      return false;
    }
    if (!path.startsWith(this.#root + sep) || path.includes(`${sep}node_modules${sep}`)) return false;
    const folder = this.#folder(dirname(path), false);
    folder?.names?.add(basename(path));
    return folder !== undefined;
  }

  /** Watches `dir` and every folder under it; any change there counts. */
  addTree(dir: string): void {
    const folder = this.#folder(resolve(dir), true);
    if (folder === undefined) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.isDirectory() && entry.name !== "node_modules" && !entry.name.startsWith(".")) this.addTree(join(dir, entry.name));
    }
  }

  /** Stops watching; no `onChange` after this. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const { watcher } of this.#folders.values()) watcher.close();
    this.#folders.clear();
  }

  #folder(dir: string, whole: boolean): WatchedFolder | undefined {
    const known = this.#folders.get(dir);
    if (known !== undefined) return known;
    if (this.#closed) return undefined;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => this.#event(dir, name === null ? null : String(name)));
    } catch (err) {
      log.warn(`typhoon: autoreload cannot watch ${dir}: ${(err as Error).message}`);
      return undefined;
    }
    // The folder was removed or became unreadable: forget it (a later report may add it again).
    watcher.on("error", () => {
      watcher.close();
      this.#folders.delete(dir);
    });
    const folder: WatchedFolder = { watcher, names: whole ? null : new Set() };
    this.#folders.set(dir, folder);
    return folder;
  }

  #event(dir: string, name: string | null): void {
    const folder = this.#folders.get(dir);
    if (folder === undefined || this.#closed) return;
    if (folder.names !== null && name !== null && !folder.names.has(name)) return;
    const path = name === null ? dir : join(dir, name);
    // A folder created inside a template folder is watched from now on.
    if (folder.names === null && name !== null) this.addTree(path);
    this.#changed.add(path);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      const paths = [...this.#changed];
      this.#changed.clear();
      if (!this.#closed) this.#onChange(paths);
    }, SETTLE_MS);
  }
}

function stripQuery(url: string): string {
  const parsed = new URL(url);
  parsed.search = "";
  parsed.hash = "";
  return parsed.href;
}
