/**
 * `start()` with real processes: `start(0)` forks one child per CPU (`cpuCount()`), and the
 * supervisor's `start()` resolves only once every child listens, even one that is late.
 */
import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";
import t from "tap";
import { cpuCount } from "../../core/index.ts";
import { freePort, get, startFixture } from "../fixtures/cluster-harness.ts";

t.test("cpuCount() is the available parallelism", async (t) => {
  t.equal(cpuCount(), availableParallelism());
  t.ok(cpuCount() >= 1);
});

t.test("start(0) forks one child per CPU, with task ids 0..cpuCount()-1, and each serves", async (t) => {
  const n = cpuCount();
  const port = await freePort();
  const fx = startFixture("cluster-app.ts", { PORT: String(port), PROCESSES: "0", SCHEDULING: "least-busy" });
  t.teardown(() => fx.kill());
  await fx.waitFor(/^supervisor ready/, { timeout: 30_000 + 10_000 * n });
  const pids = new Set<number>();
  for (let task = 0; task < n; task++) {
    const [, pid] = (await fx.waitFor(new RegExp(`^child ready ${task} (\\d+)`)))!;
    pids.add(Number(pid));
  }
  t.equal(pids.size, n, `${n} distinct child processes`);
  // Every child is forked before start() resolves: the supervisor's live children, counted by
  // the OS, are exactly those.
  const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(fx.pid)], { encoding: "utf8" })
    .split("\n").map((l) => l.trim()).filter((l) => l !== "").map(Number);
  t.same(new Set(children), pids, "the supervisor has exactly cpuCount() children, no more");
  const reply = await get(port, "/");
  t.equal(reply.status, 200, "they serve the port");
  t.ok(pids.has(Number(reply.body.split(" ")[0])), "from one of those children");
});

t.test("the supervisor's start() resolves only after every child listens, a late one included", async (t) => {
  const port = await freePort();
  const fx = startFixture("cluster-app.ts", { PORT: String(port), PROCESSES: "2", HOLD_TASK: "1" });
  t.teardown(() => fx.kill());
  const [, held] = (await fx.waitFor(/^child holding (\d+)/, { timeout: 30_000 }))!;
  const [, ready] = (await fx.waitFor(/^child ready 0 (\d+)/, { timeout: 30_000 }))!;
  // Child 0 serves already: the supervisor's side of the port is up.
  const first = await get(port, "/");
  t.equal(first.body, `${ready} 0`, "child 0 serves while child 1 has not listened yet");
  // Nothing announces that start() did not resolve; give a resolved start() ample time to print.
  // (A slower machine can only hide the bug here, never fail a correct supervisor.)
  const early = await fx.waitFor(/^supervisor ready/, { timeout: 1_000 }).then(() => true, () => false);
  t.notOk(early, "start() has not resolved in the supervisor while child 1 is not listening");
  const from = fx.lines.length;
  process.kill(Number(held), "SIGUSR2");
  await fx.waitFor(/^supervisor ready/, { from, timeout: 30_000 });
  await fx.waitFor(/^child ready 1 /);
  t.pass("start() resolved in the supervisor once child 1 listened");
});
