/**
 * Listening and lifecycle with real processes: a Unix socket reached with curl --unix-socket
 * (or node's socketPath) in one process and under start(2); drainDelay on SIGTERM (during the
 * delay /health is 503 while / is 200 on new connections, then the process stops accepting and
 * exits 0); requestTimeout answering 503 and aborting this.signal.
 */
import t from "tap";
import type { Test } from "tap";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, get, startFixture, type Fixture } from "../fixtures/cluster-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "typhoon-ops-"));

function getUnix(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function start(t: Test, env: Record<string, string>): Promise<Fixture> {
  const fx = startFixture("ops-app.ts", { TYPHOON_LOG_LEVEL: "warn", ...env });
  t.teardown(() => fx.kill());
  await fx.waitFor(/^ops ready task=null/, { timeout: 30_000 });
  return fx;
}

const hasCurl = spawnSync("curl", ["--version"]).status === 0;

for (const processes of [1, 2]) {
  t.test(`a Unix socket serves the app (${processes === 1 ? "one process" : "start(2)"})`, async (t) => {
    const socket = join(dir, `app-${processes}.sock`);
    await start(t, { SOCKET: socket, PROCESSES: String(processes) });
    const res = await getUnix(socket, "/");
    t.same(res, { status: 200, body: "main" });
    if (!hasCurl) t.comment("curl is not installed: checked with node's socketPath only");
    else {
      const curl = spawnSync("curl", ["-s", "--unix-socket", socket, "http://localhost/items/3"], { encoding: "utf8" });
      t.match(JSON.parse(curl.stdout), { id: "3" }, "curl --unix-socket reaches the app");
    }
  });
}

for (const processes of [1, 2]) t.test(`drainDelay (${processes === 1 ? "one process" : "start(2)"}): /health answers 503 while / is still 200, then the server stops accepting and exits 0`, async (t) => {
  const port = await freePort();
  const fx = await start(t, { PORT: String(port), DRAIN_DELAY: "1500", PROCESSES: String(processes) });
  t.equal((await get(port, "/health")).status, 200, "healthy before");
  const signalled = Date.now();
  fx.proc.kill("SIGTERM");
  // The health check turns 503 on new connections...
  let health = 200;
  for (let i = 0; i < 100 && health === 200; i++) health = (await get(port, "/health")).status;
  t.equal(health, 503, "health says draining");
  // ...while everything else is still served on new connections.
  const during = await get(port, "/");
  t.equal(during.status, 200, "/ is served during the delay");
  t.ok(Date.now() - signalled < 1500, "both seen within the delay");
  const { code, signal } = await fx.exited;
  t.equal(code, 0, `exit status 0 (signal ${String(signal)})`);
  t.ok(Date.now() - signalled >= 1400, "it waited for the delay before stopping");
  await t.rejects(get(port, "/", undefined, 2_000), "then nothing accepts");
});

t.test("requestTimeout: the handler's signal aborts and the client gets 503 when nothing was sent", async (t) => {
  const port = await freePort();
  await start(t, { PORT: String(port), REQUEST_TIMEOUT: "200" });
  const started = Date.now();
  const res = await get(port, "/slow");
  t.equal(res.status, 503);
  t.ok(Date.now() - started >= 180, "after the timeout");
  t.equal((await get(port, "/")).status, 200, "the server goes on");
});
