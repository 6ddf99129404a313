/**
 * SIGHUP to the supervisor with real processes: under continuous keep-alive load every child is
 * replaced, one at a time, without a failed request or a socket error, whatever the scheduling
 * (round-robin included: its children drain without http.Server's cut of idle connections).
 */
import { Agent } from "node:http";
import t from "tap";
import { alive, freePort, get, startFixture, until } from "../fixtures/cluster-harness.ts";

for (const scheduling of ["least-busy", "round-robin"]) {
  t.test(`SIGHUP under continuous keep-alive load (${scheduling}): every child replaced, no failed request, no socket error`, async (t) => {
    const port = await freePort();
    const fx = startFixture("cluster-app.ts", { PORT: String(port), PROCESSES: "2", SCHEDULING: scheduling });
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
}
