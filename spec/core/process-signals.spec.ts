/**
 * SIGTERM and SIGINT with real processes: a slow request in flight finishes (with
 * `Connection: close`) and the process exits 0, in a single process and under a supervisor
 * (children included).
 */
import { Agent } from "node:http";
import t from "tap";
import { alive, freePort, get, startFixture, until } from "../fixtures/cluster-harness.ts";

for (const [signal, processes] of [["SIGTERM", 1], ["SIGTERM", 2], ["SIGINT", 1], ["SIGINT", 2]] as const) {
  const where = processes === 1 ? "a single process (start(1))" : "the supervisor of start(2)";
  t.test(`${signal} to ${where} with a slow request in flight: it completes with Connection: close, then exit 0`, async (t) => {
    const port = await freePort();
    const fx = startFixture("cluster-app.ts", { PORT: String(port), PROCESSES: String(processes) });
    t.teardown(() => fx.kill());
    await fx.waitFor(/^supervisor ready/, { timeout: 30_000 });
    for (let task = 0; task < processes && processes > 1; task++) await fx.waitFor(new RegExp(`^child ready ${task} `));
    const from = fx.lines.length;
    const agent = new Agent({ keepAlive: true });
    t.teardown(() => agent.destroy());
    const slow = get(port, "/wait/2000", agent);
    const [, servingPid] = (await fx.waitFor(/^wait started (\d+)/, { from }))!;
    const children = fx.lines.filter((l) => l.startsWith("child ready")).map((l) => Number(l.split(" ")[3]));
    process.kill(fx.pid, signal);

    const reply = await slow;
    t.equal(reply.status, 200, "the request in flight was answered");
    t.equal(reply.body, `done ${servingPid} draining`, "in full, and isDraining() was true in the process that served it");
    t.equal(reply.headers["connection"], "close", "with Connection: close, since the server was draining");
    t.same(await fx.exited, { code: 0, signal: null }, "then the process exits 0");
    await until(() => children.every((pid) => !alive(pid)), 5_000, "every child to be gone");
    t.pass("no child outlives the supervisor");
  });
}

t.test("SIGTERM: a request still running after the grace period (drainTimeout) is cut, and the process exits 0", async (t) => {
  const port = await freePort();
  const fx = startFixture("cluster-app.ts", { PORT: String(port), PROCESSES: "1", DRAIN_TIMEOUT: "300" });
  t.teardown(() => fx.kill());
  await fx.waitFor(/^supervisor ready/, { timeout: 30_000 });
  const endless = get(port, "/wait/60000").then(() => "answered", (err: Error) => err.message);
  await fx.waitFor(/^wait started/);
  const signalled = Date.now();
  process.kill(fx.pid, "SIGTERM");
  t.same(await fx.exited, { code: 0, signal: null }, "exit 0 after the grace period");
  t.ok(Date.now() - signalled < 30_000, "long before the request would have finished");
  t.match(await endless, /socket hang up|ECONNRESET/, "the request was cut, not answered");
});
