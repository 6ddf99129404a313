// `make doctor` cannot rot: the profiling script runs clinic doctor on the demo app under its own
// short load and must leave a real HTML report where it says; bad input fails before clinic starts.
// Also the route mix the load is built from.
import t from "tap";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseRoutes, requestSequence } from "../../scripts/profile.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));

// tap loads its process-info hook into every child through NODE_OPTIONS, re-adding it on each
// spawn; inside clinic it breaks port detection. `env -u` drops it after tap's spawn wrapper has
// run, so the script runs as `make` runs it.
function runProfile(args: string[], env: Record<string, string>, limitMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((done, fail) => {
    const child = spawn("env", ["-u", "NODE_OPTIONS", process.execPath, "--import", "tsx", "scripts/profile.ts", ...args], {
      cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => { out += c.toString(); });
    child.stderr.on("data", (c: Buffer) => { out += c.toString(); });
    const timer = setTimeout(() => { child.kill("SIGKILL"); fail(new Error(`profile.ts ran past ${limitMs} ms:\n${out}`)); }, limitMs);
    child.once("exit", (code) => { clearTimeout(timer); done({ code, out }); });
  });
}

t.test("doctor on the demo app under a short load writes an HTML report and prints its path", async (t) => {
  const dest = mkdtempSync(join(tmpdir(), "typhoon-clinic-"));
  t.teardown(() => rmSync(dest, { recursive: true, force: true }));
  const { code, out } = await runProfile(["doctor"], { DURATION: "1", ROUTE: "/*3,/json", DEST: dest }, 90_000);
  t.equal(code, 0, out);
  t.match(out, /load: [1-9]\d* requests in 1 s over \/, \/json; 0 non-2xx, 0 errors/, "the load reached the app");
  const m = /^report: (.+\.clinic-doctor\.html)$/m.exec(out);
  t.ok(m, "the report's path is printed");
  const report = resolve(root, m![1]!);
  t.ok(report.startsWith(dest), "the report is under DEST, printed absolute when outside the working directory");
  t.ok(existsSync(report) && statSync(report).size > 10_000, "the report is a real HTML file");
  t.match(readFileSync(report, "utf8").slice(-400), /"tool":"clinic-doctor"|"tool":"doctor"/);
  t.ok(isAbsolute(m![1]!));
});

t.test("an app that never listens fails the run instead of leaving an empty report", async (t) => {
  const dest = mkdtempSync(join(tmpdir(), "typhoon-clinic-"));
  t.teardown(() => rmSync(dest, { recursive: true, force: true }));
  const { code, out } = await runProfile(["doctor"], { DURATION: "1", APP: "scripts/tasks.ts", DEST: dest }, 90_000);
  t.equal(code, 1, out);
  t.match(out, /the load never ran: scripts\/tasks\.ts did not start listening under clinic/);
  t.notMatch(out, /^report: /m);
});

t.test("an unknown tool or a malformed ROUTE fails at once, without running clinic", async (t) => {
  const unknown = await runProfile(["bubbleprof"], {}, 15_000);
  t.equal(unknown.code, 2);
  t.match(unknown.out, /usage: profile\.ts doctor\|flame\|heap/);
  const bad = await runProfile(["flame"], { ROUTE: "json*2" }, 15_000);
  t.equal(bad.code, 1);
  t.match(bad.out, /ROUTE: "json\*2" must start with \//);
  t.notMatch(bad.out, /clinic flame on/);
});

t.test("ROUTE weights become a request sequence with each path's share, spread out", async (t) => {
  t.same(parseRoutes("/, /json*3 ,"), [{ path: "/", weight: 1 }, { path: "/json", weight: 3 }]);
  t.throws(() => parseRoutes("/a*0"), /positive integer/);
  t.throws(() => parseRoutes("/a*x"), /positive integer/);
  const sequence = requestSequence(parseRoutes("/*20,/json*20,/sleep/1*1"));
  t.equal(sequence.length, 41);
  t.equal(sequence.filter((p) => p === "/").length, 20);
  t.equal(sequence.filter((p) => p === "/json").length, 20);
  t.equal(sequence.filter((p) => p === "/sleep/1").length, 1);
  const firstTen = sequence.slice(0, 10);
  t.ok(firstTen.includes("/") && firstTen.includes("/json"), "equal weights alternate instead of coming in runs");
});
