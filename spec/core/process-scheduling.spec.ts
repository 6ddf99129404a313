/**
 * How children share connections: least-busy handoff keeps new connections away from a child
 * stuck in CPU work (the seed's experiment, as a spec); round-robin (via `forkProcesses`) and
 * the shared socket also serve from every child; and the pick itself, case by case.
 */
import t, { type Test } from "tap";
import { readdirSync, writeSync } from "node:fs";
import { LoadFile, loadFileWriter, monotonicMs, pickLeastBusy, type ChildLoad } from "../../core/server/handoff.ts";
import { freePort, get, startFixture, type Fixture } from "../fixtures/cluster-harness.ts";

async function started(t: Test, script: string, env: Record<string, string>): Promise<{ fx: Fixture; port: number }> {
  const port = await freePort();
  const fx = startFixture(script, { PORT: String(port), PROCESSES: "2", ...env });
  t.teardown(() => fx.kill());
  await fx.waitFor(/^child ready 0 /, { timeout: 30_000 });
  await fx.waitFor(/^child ready 1 /, { timeout: 30_000 });
  return { fx, port };
}

/** The tasks that answered `/` on `count` fresh connections. */
async function tasksSeen(port: number, count: number): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < count && seen.size < 2; i++) seen.add(Number((await get(port, "/")).body.split(" ")[1]));
  return seen;
}

t.test("least-busy: while /sleep holds one child, every / on a new connection is answered by the other, before the sleep ends", async (t) => {
  const { fx, port } = await started(t, "cluster-app.ts", { SCHEDULING: "least-busy" });
  await fx.waitFor(/^supervisor ready/);
  const from = fx.lines.length;
  let sleepDone = false;
  // About a second of CPU work on the reference machine: five quick requests fit inside it with room to spare.
  const sleep = get(port, "/sleep/10").then((reply) => { sleepDone = true; return reply; });
  const [, sleeper] = (await fx.waitFor(/^sleep started (\d+)/, { from }))!;
  const answers: { pid: number; beforeSleepEnded: boolean }[] = [];
  for (let i = 0; i < 5; i++) {
    const reply = await get(port, "/");
    answers.push({ pid: Number(reply.body.split(" ")[0]), beforeSleepEnded: !sleepDone });
  }
  const slept = await sleep;
  t.equal(slept.status, 200);
  t.ok(answers.every((a) => a.pid !== Number(sleeper)), "no / went to the sleeping child");
  t.ok(answers.every((a) => a.beforeSleepEnded), "every / was answered while the sleep still ran");
});

t.test("forkProcesses(2): code after it runs in the children only, which share the port (round-robin)", async (t) => {
  const { fx, port } = await started(t, "cluster-fork.ts", {});
  t.same(await tasksSeen(port, 20), new Set([0, 1]), "both children answer");
  t.equal(fx.lines.filter((l) => l.startsWith("child ready")).length, 2, "the supervisor never ran the serving code");
});

t.test("scheduling: shared (SCHED_NONE) serves from the shared socket, from both children", async (t) => {
  const { fx, port } = await started(t, "cluster-app.ts", { SCHEDULING: "shared" });
  const seen = await tasksSeen(port, 40);
  t.ok(seen.size >= 1 && [...seen].every((task) => task === 0 || task === 1), `children answer (${[...seen].join(", ")})`);
  // The kernel may hand every connection of an idle server to one child. A child held in CPU
  // work cannot accept, so while /sleep holds one, a / on a new connection can only be accepted
  // by the other: both then served from the shared socket.
  const taskOf = new Map(fx.lines.flatMap((l) => {
    const m = /^child ready (\d+) (\d+)/.exec(l);
    return m ? [[Number(m[2]), Number(m[1])] as const] : [];
  }));
  const from = fx.lines.length;
  let sleepDone = false;
  const sleep = get(port, "/sleep/10").then((reply) => { sleepDone = true; return reply; });
  const [, sleeper] = (await fx.waitFor(/^sleep started (\d+)/, { from }))!;
  const other = await get(port, "/");
  const answeredWhileAsleep = !sleepDone;
  const slept = await sleep;
  t.equal(slept.status, 200, "the sleeping child answered /sleep");
  const otherTask = Number(other.body.split(" ")[1]);
  t.not(Number(other.body.split(" ")[0]), Number(sleeper), "the / went to the other child");
  t.ok(answeredWhileAsleep, "while the sleep still ran");
  t.same(new Set([taskOf.get(Number(sleeper)), otherTask]), new Set([0, 1]), "tasks 0 and 1 both served");
});

t.test("pickLeastBusy: a child not heard from lately is passed over while another answers", async (t) => {
  const now = 1_000;
  const load = (lastHeard: number, unreported = 0, inflight = 0, open = 0): ChildLoad =>
    ({ lastHeard, sent: 10 + unreported, received: 10, inflight, open });
  const stuck = load(now - 500);
  const idle = load(now - 5, 0, 3, 10);
  t.equal(pickLeastBusy([stuck, idle], 0, now), idle, "a heard-from child wins even with more load");
  t.equal(pickLeastBusy([stuck], 0, now), stuck, "when all are stuck, still someone");
  t.equal(pickLeastBusy([], 0, now), undefined, "no child, no pick");
  const a = load(now, 1, 0, 0);
  const b = load(now, 0, 0, 5);
  t.equal(pickLeastBusy([a, b], 0, now), b, "fewer requests in flight (connections handed over since the last report included) wins");
  const c = load(now, 0, 0, 1);
  const d = load(now, 0, 0, 2);
  t.equal(pickLeastBusy([d, c], 0, now), c, "then fewer open connections");
  const older = load(now - 30);
  const newer = load(now - 10);
  t.equal(pickLeastBusy([older, newer], 0, now), newer, "then the one heard from last");
  const e = load(now);
  const f = load(now);
  t.equal(pickLeastBusy([e, f], 0, now), e, "equal children take turns: from 0");
  t.equal(pickLeastBusy([e, f], 1, now), f, "equal children take turns: from 1");
  // An idle child's heartbeat may run late on a busy machine; a child that reported a request
  // a moment ago may be stuck in it.
  const late = load(now - 100);
  const working = load(now - 5, 0, 1, 1);
  t.equal(pickLeastBusy([working, late], 0, now), late, "an idle child a few beats late is not taken for stuck");
  const lateWithWork = load(now - 100, 0, 0, 1);
  t.equal(pickLeastBusy([lateWithWork, working], 0, now), working, "a child with an open connection that late is");
});

t.test("pickLeastBusy: an idle child beats slowly; a connection handed to it makes it stuck only if not recorded within 60 ms", async (t) => {
  const now = 1_000;
  const working: ChildLoad = { lastHeard: now - 5, sent: 10, received: 10, inflight: 1, open: 5 };
  const quiet: ChildLoad = { lastHeard: now - 90, sent: 11, received: 10, inflight: 0, open: 0, handedAt: now - 10 };
  t.equal(pickLeastBusy([working, quiet], 0, now), quiet, "handed a connection 10 ms ago, between two quiet beats: not stuck");
  const unanswered: ChildLoad = { ...quiet, handedAt: now - 80 };
  t.equal(pickLeastBusy([unanswered, working], 0, now), working, "handed one 80 ms ago and silent since: stuck");
  const silent: ChildLoad = { lastHeard: now - 300, sent: 10, received: 10, inflight: 0, open: 0 };
  t.equal(pickLeastBusy([silent, working], 0, now), working, "an idle child silent past 250 ms: stuck");
});

t.test("load file: the supervisor reads a child's last record when it picks; a torn record is not taken; nothing is left on disk", async (t) => {
  const file = new LoadFile();
  t.teardown(() => file.close());
  t.notOk(readdirSync(process.platform === "linux" ? "/dev/shm" : "/tmp").some((name) => name.startsWith(`typhoon-load-${process.pid}-`)),
    "the file is removed from its directory as soon as it is open");
  const child: ChildLoad = { lastHeard: 5, sent: 0, received: 0, inflight: 0, open: 0 };
  file.read(child);
  t.same(child, { lastHeard: 5, sent: 0, received: 0, inflight: 0, open: 0 }, "no record yet: nothing changes");
  const report = loadFileWriter(file.fd);
  const before = monotonicMs();
  report(1, 3, 7);
  report(2, 4, 9);
  file.read(child);
  t.match(child, { inflight: 2, open: 4, received: 9 }, "the last record wins");
  t.ok(child.lastHeard >= before && child.lastHeard <= monotonicMs(), "heard from when the child wrote, on the shared monotonic clock");
  // A record caught half rewritten: its two sequence numbers differ.
  writeSync(file.fd, Buffer.from([0xff, 0xff, 0xff, 0x7f]), 0, 4, 24);
  const stale = { ...child };
  writeSync(file.fd, Buffer.from([9, 0, 0, 0]), 0, 4, 4);
  file.read(child);
  t.same(child, stale, "a torn record is not taken");
  report(0, 0, 9);
  file.read(child);
  t.match(child, { inflight: 0, open: 0, received: 9 }, "the next whole record is");
  report(5, 5, 5);
  file.close();
  file.read(child);
  t.equal(child.inflight, 0, "a closed file is not read");
});
