/**
 * Signals with real processes: SIGTERM lets a slow request in flight finish (with
 * `Connection: close`) and exits 0, in a single process and under a supervisor; SIGHUP replaces
 * every child under continuous keep-alive load without a failed request or a socket error.
 */
import { Agent } from "node:http";
import t from "tap";
import { alive, freePort, get, startFixture, until } from "../fixtures/cluster-harness.ts";

for (const processes of [1, 2]) {
  const where = processes === 1 ? "a single process (start(1))" : "the supervisor of start(2)";
  t.test(`SIGTERM to ${where} with a slow request in flight: it completes with Connection: close, then exit 0`, async (t) => {
    const port = await freePort();
    const fx = startFixture("cluster-app.ts", { PORT: String(port), PROCESSES: String(processes) });
    t.teardown(() => fx.kill());
    await fx.waitFor(/^supervisor ready/, { timeout: 30_000 });
    for (let task = 0; task < processes && processes > 1; task++) await fx.waitFor(new RegExp(`^child ready ${task} `));
    const from = fx.lines.length;
    const agent = new Agent({ keepAlive: true });
    t.teardown(() => agent.destroy());
    const slow = get(port, "/wait/700", agent);
    const [, servingPid] = (await fx.waitFor(/^wait started (\d+)/, { from }))!;
    const children = fx.lines.filter((l) => l.startsWith("child ready")).map((l) => Number(l.split(" ")[3]));
    process.kill(fx.pid, "SIGTERM");

    const reply = await slow;
    t.equal(reply.status, 200, "the request in flight was answered");
    t.equal(reply.body, `done ${servingPid}`, "in full");
    t.equal(reply.headers["connection"], "close", "with Connection: close, since the server was draining");
    t.same(await fx.exited, { code: 0, signal: null }, "then the process exits 0");
    await until(() => children.every((pid) => !alive(pid)), 5_000, "every child to be gone");
    t.pass("no child outlives the supervisor");
  });
}

t.test("SIGHUP under continuous keep-alive load: every child replaced, no failed request, no socket error", async (t) => {
  const port = await freePort();
  const fx = startFixture("cluster-app.ts", { PORT: String(port), PROCESSES: "2" });
  t.teardown(() => fx.kill());
  await fx.waitFor(/^supervisor ready/, { timeout: 30_000 });
  await fx.waitFor(/^child ready 0 /);
  await fx.waitFor(/^child ready 1 /);
  const before = fx.lines.filter((l) => l.startsWith("child ready")).map((l) => Number(l.split(" ")[3]));
  t.equal(before.length, 2);

  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const answeredBy = new Set<number>();
  const client = async (): Promise<void> => {
    while (!stop) {
      try {
        const reply = await get(port, "/", agent);
        if (reply.status === 200) {
          ok++;
          answeredBy.add(Number(reply.body.split(" ")[0]));
        } else failures.push(`status ${reply.status}`);
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  const clients = [client(), client(), client(), client()];
  await until(() => ok >= 50, 10_000, "load to be flowing");

  const from = fx.lines.length;
  process.kill(fx.pid, "SIGHUP");
  await fx.waitFor(/^child ready 0/, { from, timeout: 30_000 });
  await fx.waitFor(/^child ready 1/, { from, timeout: 30_000 });
  await until(() => before.every((pid) => !alive(pid)), 40_000, "the old children to exit");
  const after = fx.lines.slice(from).filter((l) => l.startsWith("child ready")).map((l) => Number(l.split(" ")[3]));
  answeredBy.clear();
  await until(() => after.every((pid) => answeredBy.has(pid)), 10_000, "both new children to answer the load");
  stop = true;
  await Promise.all(clients);

  t.same(failures, [], "zero failed requests, zero socket errors");
  t.ok(ok > 100, `requests kept flowing (${ok})`);
  t.equal(after.length, 2, "two new children");
  t.notOk(after.some((pid) => before.includes(pid)), "every child pid changed");
  t.ok(alive(fx.pid), "the supervisor stayed");
});
