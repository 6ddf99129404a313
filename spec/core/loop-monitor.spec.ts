// The loop-delay monitor on the real event loop: it sees a block as soon as the loop comes back,
// recovers by itself, reports percentiles and utilization, and never keeps a process alive.
// Also the one blocking warning's exact wording.
import t from "tap";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ErrorCode } from "../../core/errors.ts";
import { EventLoopMonitor, formatBlocking, loopMonitor, reportBlocking } from "../../core/loop/loop-monitor.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const monitorUrl = new URL("../../core/loop/loop-monitor.ts", import.meta.url).href;

function block(ms: number): void {
  const started = performance.now();
  while (performance.now() - started < ms) { /* hold the loop on purpose */ }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const after = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await after(2);
  }
}

t.test("a block is seen right after it, before any timer ran, then recovers by itself", async (t) => {
  const monitor = new EventLoopMonitor({ interval: 10 }).start();
  t.teardown(() => monitor.stop());
  // An idle loop reads low; on a loaded machine the first samples may carry scheduling delay.
  await waitFor(() => monitor.delay > 0 && monitor.delay < 200);
  t.ok(monitor.delay < 200, `an idle loop reads ${monitor.delay.toFixed(1)} ms`);
  await nextTurn();
  block(250);
  t.ok(monitor.delay >= 200, `right after a 250 ms block: ${monitor.delay.toFixed(1)} ms`);
  await after(1); // the sampler has run now and recorded its own lateness
  t.ok(monitor.delay >= 200, `after the sampler ran: ${monitor.delay.toFixed(1)} ms`);
  await waitFor(() => monitor.delay < 50);
  t.pass("delay fell back below 50 ms once the loop was free");
});

t.test("stats: percentiles in order, max sees the block, utilization in 0..1; reset starts over", async (t) => {
  const monitor = new EventLoopMonitor({ interval: 10 }).start();
  t.teardown(() => monitor.stop());
  t.same(monitor.stats().delay, { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 }, "no samples yet");
  const started = performance.now();
  await after(60);
  block(300);
  await after(60);
  const { delay, utilization } = monitor.stats();
  // The block is measured in wall time, so it lasts 300 ms however loaded the machine is; the
  // idle parts may stretch, so the utilization bound is taken from the measured window.
  const window = performance.now() - started;
  t.ok(delay.max >= 250, `max ${delay.max} ms`);
  t.ok(delay.p50 <= delay.p90 && delay.p90 <= delay.p99 && delay.p99 <= delay.max, JSON.stringify(delay));
  t.ok(delay.mean > 0 && delay.mean <= delay.max);
  const busyShare = 300 / window;
  t.ok(utilization > 0.8 * busyShare && utilization <= 1, `300 ms busy of ${Math.round(window)} ms: utilization ${utilization.toFixed(2)} (at least ${(0.8 * busyShare).toFixed(2)})`);
  monitor.reset();
  t.same(monitor.stats().delay, { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 }, "reset() forgets the samples");
  await after(100);
  const fresh = monitor.stats();
  t.ok(fresh.delay.max > 0 && fresh.delay.max < delay.max, `the new window has its own samples (max ${fresh.delay.max} ms)`);
  t.ok(fresh.utilization < utilization, `utilization of the idle window ${fresh.utilization.toFixed(2)}`);
});

t.test("a stopped monitor reads 0 and can start again", async (t) => {
  const monitor = new EventLoopMonitor({ interval: 10 }).start();
  t.ok(monitor.running);
  monitor.stop();
  t.notOk(monitor.running);
  block(50);
  t.equal(monitor.delay, 0);
  monitor.start();
  t.teardown(() => monitor.stop());
  t.ok(monitor.running);
  t.ok(monitor.delay < 50);
});

t.test("an invalid sampling interval throws E_TIMER_ARGUMENT", async (t) => {
  for (const interval of [0, -1, Number.NaN, Infinity]) {
    t.throws(() => new EventLoopMonitor({ interval }), { code: ErrorCode.TIMER_ARGUMENT }, `interval ${interval}`);
  }
});

t.test("loopMonitor() is one shared monitor and its timer never keeps the process alive", async (t) => {
  t.equal(loopMonitor(), loopMonitor());
  t.type(loopMonitor().delay, "number");
  const code = `
    const { loopMonitor } = await import(${JSON.stringify(monitorUrl)});
    const started = performance.now();
    while (performance.now() - started < 60) {}
    console.log(JSON.stringify({ delay: loopMonitor().delay }));
    process.on("exit", () => console.log("exited by itself"));
  `;
  const result = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: root });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => { stdout += chunk.toString(); });
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error("the monitor kept the child alive")); }, 10_000);
    child.on("close", (exitCode) => { clearTimeout(timer); resolve({ code: exitCode, stdout }); });
  });
  t.equal(result.code, 0);
  t.match(result.stdout, /exited by itself/);
});

t.test("reportBlocking logs one line naming method, path, duration and handler method", async (t) => {
  const lines: string[] = [];
  reportBlocking({ method: "GET", path: "/sleep/5", handler: "SleepHandler", hook: "get", ms: 912.4 }, (m) => lines.push(m));
  t.same(lines, ["GET /sleep/5 blocked the event loop for 912 ms in SleepHandler.get"]);
});

t.test("reportBlocking defaults to console.warn", async (t) => {
  const warned = t.capture(console, "warn", () => {});
  reportBlocking({ method: "POST", path: "/upload", handler: "UploadHandler", hook: "prepare", ms: 51.6 });
  t.same(warned().map((call) => call.args), [["POST /upload blocked the event loop for 52 ms in UploadHandler.prepare"]]);
});

t.test("control characters in the path cannot forge log lines", async (t) => {
  const line = formatBlocking({ method: "GET", path: "/a\r\nFAKE log line", handler: "H", hook: "get", ms: 10 });
  t.equal(line, "GET /a??FAKE log line blocked the event loop for 10 ms in H.get");
});

t.test("pauseWhenUnread: an unread monitor stops waking the loop; a read resumes it", async (t) => {
  const monitor = new EventLoopMonitor({ interval: 10, pauseWhenUnread: true }).start();
  t.teardown(() => monitor.stop());
  await waitFor(() => !monitor.running);
  t.pass("paused after an interval without readers");
  t.equal(monitor.delay, 0, "the read that resumes it reads 0");
  t.ok(monitor.running, "and resumes sampling");
  block(150); // the resuming request itself blocks the loop
  t.ok(monitor.delay >= 100, `a request read right after the block sees it: ${monitor.delay.toFixed(1)} ms`);
  await after(0); // the sampler runs first (it is overdue), then this: it must not have paused
  t.ok(monitor.delay >= 100, `so does one read after the sampler's tick: ${monitor.delay.toFixed(1)} ms`);
  await waitFor(() => !monitor.running);
  monitor.stats();
  t.ok(monitor.running, "stats() resumes it");
  await after(40);
  t.ok(monitor.running, "and once stats() was asked for, it samples continuously");
});

t.test("the shared monitor pauses while unread and sees a block right after a resuming read", async (t) => {
  const code = `
    const { loopMonitor } = await import(${JSON.stringify(monitorUrl)});
    const monitor = loopMonitor();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const keep = setTimeout(() => {}, 100000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const pausedWhileIdle = monitor.running === false;
    monitor.delay;
    const started = performance.now();
    while (performance.now() - started < 150) {}
    await new Promise((resolve) => setTimeout(resolve, 0)); // after the sampler's overdue tick
    console.log(JSON.stringify({ pausedWhileIdle, delayAfterBlock: monitor.delay }));
    clearTimeout(keep);
  `;
  const result = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: root });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => { stdout += chunk.toString(); });
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error("child timed out")); }, 15_000);
    child.on("close", () => { clearTimeout(timer); resolve(stdout); });
  });
  const report = JSON.parse(result.trim().split("\n").pop() ?? "{}") as { pausedWhileIdle?: boolean; delayAfterBlock?: number };
  t.equal(report.pausedWhileIdle, true, "no timer wakes an idle process");
  t.ok((report.delayAfterBlock ?? 0) >= 100, `delay after a 150 ms block: ${report.delayAfterBlock} ms`);
});
