/**
 * `start(n)` with real processes: children share the port, a child killed with SIGKILL comes
 * back with its task id while the others keep answering, a child exiting 0 stays gone, and
 * `maxRestarts` ends a crash loop with a clear log line and a non-zero exit.
 */
import { Agent } from "node:http";
import t, { type Test } from "tap";
import { alive, freePort, get, startFixture, until, type Fixture } from "../fixtures/cluster-harness.ts";

/** Starts the cluster fixture and waits for the supervisor to say every child is ready. */
async function cluster(t: Test, env: Record<string, string> = {}): Promise<{ fx: Fixture; port: number }> {
  const port = await freePort();
  const fx = startFixture("cluster-app.ts", { PORT: String(port), PROCESSES: "2", TYPHOON_DEBUG: "1", ...env });
  t.teardown(() => fx.kill());
  await fx.waitFor(/^supervisor ready/, { timeout: 30_000 });
  // A child prints its line after telling the supervisor, so the two can arrive in either order.
  await fx.waitFor(/^child ready 0 /);
  await fx.waitFor(/^child ready 1 /);
  return { fx, port };
}

/** The pid and task id that answered `/` on a fresh connection. */
async function who(port: number, agent?: Agent): Promise<{ pid: number; task: number }> {
  const reply = await get(port, "/", agent);
  const [pid, task] = reply.body.split(" ").map(Number);
  return { pid: pid!, task: task! };
}

/** Asks `/` on fresh connections until `want` answers (at most `tries` times). */
async function reach(port: number, want: (w: { pid: number; task: number }) => boolean, tries = 60): Promise<{ pid: number; task: number }> {
  for (let i = 0; i < tries; i++) {
    const w = await who(port);
    if (want(w)) return w;
  }
  throw new Error("no child matching the condition answered");
}

t.test("start(2): two children with task ids 0 and 1 share the port; the supervisor does not serve", async (t) => {
  const { fx, port } = await cluster(t, { SCHEDULING: "least-busy" });
  const zero = await reach(port, (w) => w.task === 0);
  const one = await reach(port, (w) => w.task === 1);
  t.not(zero.pid, one.pid, "two processes");
  t.not(zero.pid, fx.pid, "child 0 is not the supervisor");
  t.not(one.pid, fx.pid, "child 1 is not the supervisor");
  const ready = fx.lines.filter((l) => l.startsWith("child ready")).sort();
  t.same(ready, [`child ready 0 ${zero.pid}`, `child ready 1 ${one.pid}`], "each child said it was ready, once");
});

t.test("kill -9 of a child under load: restarted with the same task id, the other child keeps answering", async (t) => {
  const { fx, port } = await cluster(t);
  // A kept-alive connection that the surviving child serves, loaded without pause.
  let agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let survivor = await who(port, agent);
  for (let i = 0; i < 40 && survivor.task !== 1; i++) {
    agent.destroy();
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
    survivor = await who(port, agent);
  }
  t.teardown(() => agent.destroy());
  t.equal(survivor.task, 1, "a connection served by child 1");
  const victim = await reach(port, (w) => w.task === 0);

  let stop = false;
  let served = 0;
  const failures: string[] = [];
  const load = (async () => {
    while (!stop) {
      try {
        const w = await who(port, agent);
        if (w.pid === survivor.pid) served++;
        else failures.push(`answered by ${w.pid}`);
      } catch (err) {
        failures.push(String(err));
      }
    }
  })();
  const from = fx.lines.length;
  process.kill(victim.pid, "SIGKILL");
  const [, pid] = (await fx.waitFor(/^child ready 0 (\d+)/, { from, timeout: 30_000 }))!;
  const servedDuringRestart = served;
  stop = true;
  await load;

  t.not(Number(pid), victim.pid, "a new process for task 0");
  t.notOk(alive(victim.pid), "the killed child is gone");
  t.same(failures, [], "no request to the other child failed");
  t.ok(servedDuringRestart > 0, `the other child answered during the restart (${servedDuringRestart} requests)`);
  const back = await reach(port, (w) => w.task === 0);
  t.equal(back.pid, Number(pid), "task 0 answers again, from the new process");
  t.match(fx.lines.join("\n"), /child 0 \(pid \d+\) exited with signal SIGKILL; restarting/, "the restart is logged");
});

t.test("a child that exits 0 is not restarted; the supervisor exits 0 when all children are gone", async (t) => {
  const { fx, port } = await cluster(t);
  const first = await reach(port, (w) => w.task === 0);
  let from = fx.lines.length;
  const reply = await reach(port, (w) => w.task === 0).then(() => get(port, "/exit/0"));
  t.equal(reply.status, 200);
  const gone = Number(/exiting (\d+)/.exec(reply.body)![1]);
  const line = await fx.waitFor(/typhoon: child (\d) \(pid (\d+)\) exited with status 0; not restarted/, { from });
  t.equal(Number(line[2]), gone, "the supervisor saw that child exit 0 and did not restart it");
  for (let i = 0; i < 10; i++) t.not((await who(port)).pid, gone, "the other child answers every new connection");
  t.notOk(fx.lines.slice(from).some((l) => /^child ready/.test(l)), "no child was started again");
  t.ok(alive(fx.pid), "the supervisor is still there");
  t.ok(first.pid > 0);

  from = fx.lines.length;
  await get(port, "/exit/0");
  t.same(await fx.exited, { code: 0, signal: null }, "the last child gone, the supervisor exits 0");
  t.notOk(fx.lines.slice(from).some((l) => /^child ready/.test(l)), "still nothing restarted");
});

t.test("maxRestarts: a crash loop ends with a clear log line and a non-zero exit", async (t) => {
  const port = await freePort();
  const fx = startFixture("cluster-app.ts", { PORT: String(port), PROCESSES: "2", MAX_RESTARTS: "2", CRASH_ON_START: "1" });
  t.teardown(() => fx.kill());
  const end = await Promise.race([fx.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("supervisor did not give up")), 40_000).unref())]);
  t.equal(end.code, 1, "the supervisor exits 1");
  const output = fx.lines.join("\n");
  t.equal(fx.lines.filter((l) => /exited with status 1; restarting/.test(l)).length, 2, "2 restarts, then no more");
  // The last restarted child may be stopped before it even says it is ready.
  t.ok(fx.lines.filter((l) => l.startsWith("child ready")).length <= 4, "no child beyond 2 + 2 was started");
  t.match(output, /giving up after 2 restarts \(maxRestarts 2\) \[E_TOO_MANY_RESTARTS\]/, "says why it gave up");
  await until(() => fx.lines.filter((l) => l.startsWith("child ready")).every((l) => !alive(Number(l.split(" ")[3]))), 5_000, "children gone");
});
