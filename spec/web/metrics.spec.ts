/**
 * `/metrics` with real processes: the exposition passes `promtool check metrics` (Debian's
 * `prometheus` package, installed here when missing and running as root), and its request
 * counts equal the requests sent — in one process and under start(2), whichever child answers
 * the scrape. An app without MetricsHandler never loads prom-client.
 */
import t from "tap";
import type { Test } from "tap";
import { spawnSync } from "node:child_process";
import { Agent } from "node:http";
import { freePort, get, startFixture, type Fixture } from "../fixtures/cluster-harness.ts";

/** promtool's path, installing Debian's prometheus package when missing and allowed; else null. */
function promtool(): string | null {
  const found = (): string | null => {
    for (const candidate of ["promtool", "/usr/bin/promtool"]) if (spawnSync(candidate, ["--version"]).status === 0) return candidate;
    return null;
  };
  const have = found();
  if (have !== null || process.getuid?.() !== 0) return have;
  spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "prometheus"], {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, stdio: "ignore", timeout: 300_000,
  });
  return found();
}

/** The value of one sample line, or 0 when absent. */
function sample(text: string, series: string): number {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}

/** Sum of typhoon_http_requests_total over the series whose labels include `labels`. */
function requests(text: string, labels: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("typhoon_http_requests_total{") && line.includes(labels)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

async function start(t: Test, processes: number): Promise<{ fx: Fixture; port: number }> {
  const port = await freePort();
  const fx = startFixture("ops-app.ts", { PORT: String(port), PROCESSES: String(processes), TYPHOON_LOG_LEVEL: "warn" });
  t.teardown(() => fx.kill());
  await fx.waitFor(/^ops ready task=null/, { timeout: 30_000 }); // single process, or the supervisor once all children serve
  return { fx, port };
}

const tool = promtool();

t.test("one process: promtool accepts the exposition and the counts equal the requests sent", async (t) => {
  const { port } = await start(t, 1);
  for (let i = 0; i < 5; i++) t.equal((await get(port, "/")).status, 200);
  for (let i = 0; i < 3; i++) t.equal((await get(port, "/items/1")).status, 200);
  t.equal((await get(port, "/boom")).status, 500);
  t.equal((await get(port, "/nope")).status, 404);
  const scrape = await get(port, "/metrics");
  t.equal(scrape.status, 200);
  t.match(scrape.headers["content-type"], /^text\/plain; version=0\.0\.4/);
  const text = scrape.body;
  t.equal(requests(text, 'route="/",status="200"'), 5);
  t.equal(requests(text, 'route="item",status="200"'), 3, "labelled by rule name");
  t.equal(requests(text, 'route="/boom",status="500"'), 1);
  t.equal(requests(text, 'route="(none)",status="404"'), 1, "unmatched: (none), never the raw path");
  t.equal(sample(text, 'typhoon_http_request_duration_seconds_count{method="GET",route="/"}'), 5);
  t.equal(sample(text, "typhoon_http_requests_in_flight"), 1, "the scrape itself is in flight");
  t.equal(sample(text, "typhoon_process_restarts_total"), 0);
  for (const name of ["typhoon_event_loop_delay_seconds", "typhoon_event_loop_utilization", "typhoon_executor_tasks_total",
    "typhoon_executor_queue_depth", "process_cpu_user_seconds_total", "nodejs_heap_size_used_bytes"]) {
    t.match(text, new RegExp(`^# TYPE ${name} `, "m"), `${name} is exposed`);
  }
  if (tool === null) t.comment("skipped: promtool is not installed (needs root to apt-get install prometheus)");
  else {
    const check = spawnSync(tool, ["check", "metrics"], { input: text, encoding: "utf8" });
    t.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
  }
});

t.test("start(2): any child's scrape covers both children; gauges are per task", async (t) => {
  const { port } = await start(t, 2);
  // Fresh connections: least-busy scheduling spreads them over both children.
  const sent = 40;
  const pids = new Set<string>();
  for (let i = 0; i < sent; i++) {
    const res = await get(port, "/items/9");
    t.equal(res.status, 200);
    pids.add(String(res.headers["x-request-id"]).split("-")[0]!);
  }
  t.ok(pids.size >= 1, `answered by ${pids.size} processes`);
  // Several scrapes on separate connections: whichever child answers, the counts are the whole server's.
  const agent = new Agent({ keepAlive: false });
  const seenTasks = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const text = (await get(port, "/metrics", agent)).body;
    t.equal(requests(text, 'route="item",status="200"'), sent, `scrape ${i + 1}: the sum over both children`);
    for (const m of text.matchAll(/typhoon_http_requests_in_flight\{task="(\d)"\}/g)) seenTasks.add(m[1]!);
    t.match(text, /^process_resident_memory_bytes\{task="0"\} /m);
    t.match(text, /^process_resident_memory_bytes\{task="1"\} /m);
    if (tool !== null) {
      const check = spawnSync(tool, ["check", "metrics"], { input: text, encoding: "utf8" });
      t.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
    }
  }
  agent.destroy();
  t.same([...seenTasks].sort(), ["0", "1"], "per-process gauges are labelled task");
});

t.test("an app without MetricsHandler does not load prom-client", async (t) => {
  const code = `
    const { Application, RequestHandler } = await import("./core/index.ts");
    class H extends RequestHandler { get() { this.write("x"); } }
    const app = new Application([["/", H]], { accessLog: false });
    await app.inject({ url: "/" });
    const { createRequire } = await import("node:module");
    const loaded = Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes("prom-client"));
    process.stdout.write(loaded ? "loaded" : "not loaded");`;
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { encoding: "utf8", cwd: new URL("../../", import.meta.url).pathname });
  t.equal(run.stdout, "not loaded", run.stderr);
});
