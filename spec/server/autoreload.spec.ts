/**
 * Debug-mode autoreload with real processes: a small `debug: true` app is copied into a
 * temporary folder and run under `node --import tsx` (`start(2)`, and one process with
 * `listen()`), clients loop requests, and the spec edits the handler file as a developer would.
 * The new text is served within 5 s of the save without a failed request; a syntax error is
 * printed (file and line) while the old children keep serving, with one attempt per save; the
 * fix is served, and so is the fix of a newly imported module that was first saved broken.
 * Also the watcher itself: a save by rename is seen, a file the app does not import is not.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import t, { type Test } from "tap";
import { alive, CLOSED_WHILE_IDLE, freePort, get, startFixture, until, type Fixture } from "../fixtures/cluster-harness.ts";
import { appRoot, SourceWatcher } from "../../core/server/autoreload.ts";

t.setTimeout(300_000); // real processes started many times over, on a machine that may be busy

const fixtures = fileURLToPath(new URL("../fixtures/", import.meta.url));
const coreIndex = pathToFileURL(fileURLToPath(new URL("../../core/index.ts", import.meta.url))).href;

/** Copies `spec/fixtures/autoreload/` into a temporary folder (typhoon imported by absolute URL). */
function copyApp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), "typhoon-autoreload-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of ["app.ts", "handler.ts"]) {
    const source = readFileSync(join(fixtures, "autoreload", name), "utf8");
    writeFileSync(join(dir, name), source.replaceAll("../../../core/index.ts", coreIndex));
  }
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "reload-fixture", type: "module", private: true }));
  return dir;
}

/** The handler file's source answering `text <version>`. */
function handlerSource(version: string): string {
  return readFileSync(join(fixtures, "autoreload", "handler.ts"), "utf8")
    .replaceAll("../../../core/index.ts", coreIndex).replace("text v1", `text ${version}`);
}

/** Saves as editors that write a new file and rename it over the old one do. */
function saveByRename(path: string, text: string): void {
  writeFileSync(`${path}.swp`, text);
  renameSync(`${path}.swp`, path);
}

interface Reply {
  readonly text: string;
  readonly pid: number;
  readonly at: number;
}

/** Clients looping GET / until stopped (10 ms apart): two on kept-alive connections, one on a new connection each time. */
class Load {
  readonly replies: Reply[] = [];
  readonly failures: string[] = [];
  /**
   * Requests sent on a kept-alive connection that a draining child closed as they went out,
   * retried as RFC 9112 §9.3.1 has clients do; any other error is a failure.
   */
  readonly retried: string[] = [];
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 2 });
  readonly #clients: Promise<void>[];
  #stopped = false;

  constructor(port: number) {
    this.#clients = [this.#loop(port, this.#agent), this.#loop(port, this.#agent), this.#loop(port, undefined)];
  }

  /** Replies from index `from` on whose text is `text`. */
  count(text: string, from = 0): number {
    return this.replies.slice(from).filter((r) => r.text === text).length;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#clients);
    this.#agent.destroy();
  }

  async #loop(port: number, agent: Agent | undefined): Promise<void> {
    while (!this.#stopped) {
      try {
        const reply = await get(port, "/", agent, 10_000);
        const [, version, pid] = /^text (\w+) (\d+)$/.exec(reply.body) ?? [];
        if (reply.status !== 200 || version === undefined) this.failures.push(`status ${reply.status}: ${reply.body.slice(0, 200)}`);
        else this.replies.push({ text: version, pid: Number(pid), at: performance.now() });
      } catch (err) {
        if ((err as { [CLOSED_WHILE_IDLE]?: boolean })[CLOSED_WHILE_IDLE] === true) this.retried.push(String(err));
        else this.failures.push(String(err));
      }
      // A browser's pace, not a benchmark's: the reload's new child must not starve for CPU.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Pids of the children that printed `serving` from output line `from` on. */
function servingPids(fx: Fixture, from = 0): number[] {
  return fx.lines.slice(from).flatMap((line) => /^serving \d+ (\d+)$/.exec(line)?.[1] ?? []).map(Number);
}

/** Saves version `version` of the handler, then waits for it to be served; returns the ms from save to first reply. */
async function saveAndWait(dir: string, version: string, load: Load, save = writeFileSync): Promise<number> {
  const from = load.replies.length;
  const saved = performance.now();
  save(join(dir, "handler.ts"), handlerSource(version));
  await until(() => load.count(version, from) > 0, 30_000, `text ${version} to be served`);
  return load.replies.slice(from).find((r) => r.text === version)!.at - saved;
}

/**
 * Served within 5 s of the save; on a machine so busy that starting one child alone takes
 * longer (the supervisor logs how long the reload's first new child took), within 2 s of that
 * start: what the reload itself adds (the wait for the save to settle, the first request routed
 * to the new child) is what is bounded then.
 */
async function servedInTime(t: Test, fx: Fixture, from: number, ms: number, what: string): Promise<void> {
  const [, started] = await fx.waitFor(/new child 0 ready in (\d+) ms/, { from, timeout: 10_000 });
  const childStart = Number(started);
  const bound = Math.max(5_000, childStart + 2_000);
  t.ok(ms < bound, `${what} is served ${Math.round(ms)} ms after the save; the new child took ${childStart} ms to start (bound ${bound} ms)`);
}

async function scenario(t: Test, children: number, env: Record<string, string>, newModule = false): Promise<void> {
  const dir = copyApp(t);
  const port = await freePort();
  // TAP="": the app must not take itself for a test file (autoreload is off under test runners).
  const fx = startFixture(relative(fixtures, join(dir, "app.ts")), { PORT: String(port), TAP: "", TYPHOON_DEBUG: "1", ...env });
  t.teardown(() => fx.kill());
  for (let task = 0; task < children; task++) await fx.waitFor(new RegExp(`^serving ${task} `), { timeout: 40_000 });
  const v1 = servingPids(fx);
  t.equal(v1.length, children, `${children} child(ren) serving`);
  const supervisor = fx.pid;

  const load = new Load(port);
  t.teardown(() => load.stop());
  await until(() => load.replies.length >= 30, 15_000, "load to be flowing");

  // 1. An edit: served within 5 s, the old children replaced one at a time.
  let mark = fx.lines.length;
  const firstEdit = await saveAndWait(dir, "v2", load);
  await servedInTime(t, fx, mark, firstEdit, "the edit");
  await until(() => v1.every((pid) => !alive(pid)), 40_000, "the v1 children to exit");
  await until(() => servingPids(fx, mark).length === children, 10_000, "the new children");
  const v2 = servingPids(fx, mark);
  let from = load.replies.length;
  await until(() => load.replies.length >= from + 30, 10_000, "replies after the reload");
  t.same(new Set(load.replies.slice(from).map((r) => r.text)), new Set(["v2"]), "only the new text once the reload is over");

  // 2. A syntax error (saved by rename, as vim does): printed, and the v2 children keep serving.
  mark = fx.lines.length;
  from = load.replies.length;
  saveByRename(join(dir, "handler.ts"), handlerSource("v3").replace("this.write(", "this.write(("));
  await fx.waitFor(/handler\.ts:\d+:\d+: ERROR/, { from: mark, timeout: 30_000 });
  await fx.waitFor(/reload stopped/, { from: mark, timeout: 30_000 });
  const afterError = load.replies.length;
  await until(() => load.replies.length >= afterError + 50, 10_000, "replies after the failed reload");
  t.same(new Set(load.replies.slice(from).map((r) => r.text)), new Set(["v2"]), "the old text keeps being served");
  t.ok(v2.every(alive), "the v2 children are the ones serving");
  t.equal(fx.lines.slice(mark).filter((l) => l.includes("reload stopped")).length, 1, "one attempt for one save: no restart loop");
  t.same(servingPids(fx, mark), [], "no child with the broken code serves");

  // 3. The fix is served.
  mark = fx.lines.length;
  const fixed = await saveAndWait(dir, "v3", load);
  await servedInTime(t, fx, mark, fixed, "the fix");
  await until(() => v2.every((pid) => !alive(pid)), 40_000, "the v2 children to exit");

  // 4. A save that imports a new, broken module: the child that failed on it reported it, so
  // saving the module's fix alone reloads.
  if (newModule) {
    mark = fx.lines.length;
    writeFileSync(join(dir, "extra.ts"), 'export const extra: string = "v4" +;\n');
    const importing = handlerSource("v4").replace("text v4", "text ${extra}").replace("export class", 'import { extra } from "./extra.ts";\n\nexport class');
    writeFileSync(join(dir, "handler.ts"), importing);
    await fx.waitFor(/extra\.ts:\d+:\d+: ERROR/, { from: mark, timeout: 30_000 });
    await fx.waitFor(/reload stopped/, { from: mark, timeout: 30_000 });
    mark = fx.lines.length;
    const from = load.replies.length;
    writeFileSync(join(dir, "extra.ts"), 'export const extra: string = "v4";\n');
    await until(() => load.count("v4", from) > 0, 60_000, "the fixed new module to be served");
    t.pass("the fix of a module first seen broken is served");
  }

  t.comment(fx.lines.filter((l) => /ready in \d+ ms/.test(l)).join("\n"));
  await load.stop();
  t.same(load.failures, [], "no failed request, no socket error, through every save");
  // A drain closes kept-alive connections once idle; a client that sends on one at that moment
  // retries (the request never reached the app). Rare, or the drain would be cutting clients off.
  t.ok(load.retried.length <= 3, `requests retried after an idle connection closed under them: ${load.retried.length}`);
  t.ok(load.replies.length > 200, `requests kept flowing (${load.replies.length})`);
  t.ok(alive(supervisor), "the supervisor stayed");
  process.kill(supervisor, "SIGTERM");
  t.same(await fx.exited, { code: 0, signal: null }, "SIGTERM still stops it cleanly");
}

t.test("debug: true with start(2): an edit is served within 5 s with no failed request; a syntax error keeps the old children serving", async (t) => {
  // maxRestarts 0: a failed reload must not count as a restart, or the supervisor would give up.
  await scenario(t, 2, { PROCESSES: "2", MAX_RESTARTS: "0" });
});

t.test("debug: true with listen(): the single process runs under a supervisor of its own and reloads the same way; a new module saved broken reloads once fixed", async (t) => {
  await scenario(t, 1, { MODE: "listen" }, true);
});

t.test("the watcher: a save in place or by rename is reported once; files the app did not load are not", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "typhoon-watch-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "package.json"), "{}");
  mkdirSync(join(dir, "templates", "parts"), { recursive: true });
  mkdirSync(join(dir, "node_modules", "dep"), { recursive: true });
  for (const file of ["main.ts", "lib.ts", "notes.ts", "node_modules/dep/index.js", "templates/parts/item.html"]) writeFileSync(join(dir, file), "1");
  t.equal(appRoot(join(dir, "main.ts")), dir, "the app's root is the folder with package.json");

  const reports: string[][] = [];
  const watcher = new SourceWatcher(dir, (paths) => reports.push(paths.map((p) => relative(dir, p)).sort()));
  t.teardown(() => watcher.close());
  t.ok(watcher.addModule(join(dir, "main.ts")), "the main script is the app's");
  t.ok(watcher.addModule(pathToFileURL(join(dir, "lib.ts")).href + "?v=1"), "a module reported by URL is the app's");
  t.notOk(watcher.addModule(pathToFileURL(join(dir, "node_modules", "dep", "index.js")).href), "a dependency is not watched");
  t.notOk(watcher.addModule(join(tmpdir(), "elsewhere.ts")), "a file outside the app's root is not watched");
  watcher.addTree(join(dir, "templates"));

  const next = async (what: string): Promise<string[]> => {
    const before = reports.length;
    await until(() => reports.length > before, 5_000, what);
    return reports[reports.length - 1]!;
  };
  writeFileSync(join(dir, "notes.ts"), "2"); // not imported: no report; the next one proves it
  writeFileSync(join(dir, "lib.ts"), "2");
  t.same(await next("the in-place save"), ["lib.ts"], "an in-place save, and only the imported file");
  saveByRename(join(dir, "main.ts"), "2");
  t.same(await next("the save by rename"), ["main.ts"], "a save by rename");
  saveByRename(join(dir, "main.ts"), "3");
  t.same(await next("a second save by rename"), ["main.ts"], "still watched after the file was replaced");
  writeFileSync(join(dir, "templates", "parts", "item.html"), "2");
  t.same(await next("the template edit"), ["templates/parts/item.html"], "a template in a subfolder");
  mkdirSync(join(dir, "templates", "new"));
  await next("the new folder");
  writeFileSync(join(dir, "templates", "new", "page.html"), "1");
  t.same(await next("a template in a new folder"), ["templates/new/page.html"], "a folder created later is watched too");
  t.equal(reports.length, 6, "one report per save");
});
