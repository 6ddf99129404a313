/**
 * `make cluster-demo`: nginx (Debian's package) on loopback in front of two typhoon instances,
 * each a supervisor of `start(2)` children, configured by `deploy/nginx/typhoon.conf` itself (its
 * ports substituted) in a temporary folder with its own pid and log files. Under load it shows:
 *
 *   1. requests spread over both instances, and the app sees the client's address (xheaders);
 *   2. stopping one instance (SIGTERM) loses no request: nginx retries on the other;
 *   3. a rolling reload (SIGHUP to each instance in turn) loses no request;
 *   4. killing one instance outright (SIGKILL to its process group) loses no GET: nginx retries it.
 *
 * The client connects from 127.0.0.2 (any 127/8 address is loopback on Linux) while nginx
 * connects to the instances from 127.0.0.1, so `remoteIp` = 127.0.0.2 proves the address came
 * through X-Real-IP. Prints its figures, exits 0 when every check held. Bounded: 120 s (a run takes ~40 s on a quiet 2-core machine; neighbours can double it).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HealthWatch, Load, type LoadStats } from "./cluster-load.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLIENT_ADDRESS = "127.0.0.2";
const PROCESSES = 2;
const CONCURRENCY = 8;
const DEADLINE_MS = 120_000;

const dir = mkdtempSync(join(tmpdir(), "typhoon-cluster-"));
chmodSync(dir, 0o755); // nginx's workers drop to an unprivileged user when started as root
const children = new Set<ChildProcess>();
const problems: string[] = [];
const started = performance.now();

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const check = (ok: boolean, problem: string): void => { if (!ok) problems.push(problem); };

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

function findNginx(): string {
  for (const candidate of ["nginx", "/usr/sbin/nginx"]) {
    if (spawnSync(candidate, ["-v"]).status === 0) return candidate;
  }
  throw new Error("nginx is not installed: apt-get install -y nginx (make cluster-demo does it)");
}

/** Starts one typhoon instance; resolves with its supervisor once it prints that it is ready. */
async function startInstance(name: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts/cluster-app.ts")], {
    env: { ...process.env, PORT: String(port), INSTANCE: name, PROCESSES: String(PROCESSES) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, so phase 4 can kill the supervisor and its children at once
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`instance ${name} not ready after 30 s:\n${output}`)), 30_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(`instance ${name} ready`)) { clearTimeout(timer); resolve(); }
    });
    child.stderr!.on("data", (chunk: Buffer) => { output += chunk.toString(); });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`instance ${name} exited (${code}):\n${output}`)); });
  });
  return child;
}

/** The pids of a supervisor's children (its `start(n)` processes; not tsx's esbuild helper). */
function childPids(supervisor: ChildProcess): number[] {
  const out = spawnSync("ps", ["--ppid", String(supervisor.pid), "-o", "pid=,comm="], { encoding: "utf8" }).stdout;
  return out.split("\n").map((line) => line.trim().split(/\s+/)).filter(([, comm]) => comm === "node").map(([pid]) => Number(pid));
}

/** `deploy/nginx/typhoon.conf` with this run's ports, inside a main config of its own. */
function writeNginxConfig(listen: number, ports: [number, number]): string {
  let site = readFileSync(join(ROOT, "deploy/nginx/typhoon.conf"), "utf8");
  for (const [from, to] of [["127.0.0.1:8001", `127.0.0.1:${ports[0]}`], ["127.0.0.1:8002", `127.0.0.1:${ports[1]}`],
    ["listen 80;", `listen 127.0.0.1:${listen};`]] as const) {
    if (!site.includes(from)) throw new Error(`deploy/nginx/typhoon.conf no longer contains "${from}"`);
    site = site.replace(from, to);
  }
  writeFileSync(join(dir, "typhoon.conf"), site);
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/typhoon.conf;
}
`);
  return conf;
}

async function startNginx(nginx: string, conf: string, port: number): Promise<ChildProcess> {
  const test = spawnSync(nginx, ["-t", "-p", dir, "-c", conf, "-e", join(dir, "error.log")], { encoding: "utf8" });
  if (test.status !== 0) throw new Error(`nginx -t rejected the config:\n${test.stderr}`);
  const child = spawn(nginx, ["-p", dir, "-c", conf, "-e", join(dir, "error.log")], { stdio: "ignore" });
  children.add(child);
  child.once("exit", () => children.delete(child));
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      if (res.ok) return child;
    } catch { /* not listening yet */ }
    await sleep(100);
  }
  throw new Error("nginx did not answer within 10 s");
}

/** Lines nginx logged so far about an upstream that failed a request (each one retried elsewhere). */
function upstreamErrors(): number {
  try {
    return readFileSync(join(dir, "error.log"), "utf8").split("\n").filter((line) => line.includes("upstream")).length;
  } catch {
    return 0;
  }
}

/**
 * `/whoami` requests an instance has answered, from its own `/metrics` (scraped directly, not
 * through nginx): under start(2) whichever child answers, the count is both children's.
 */
async function answered(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("typhoon_http_requests_total{") && line.includes('route="/whoami"')) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

function describe(stats: LoadStats): string {
  const per = [...stats.byInstance].sort().map(([name, n]) => `${name} ${n}`).join(", ");
  return `${stats.requests} requests (${per}), failures ${stats.failures.length}`;
}

async function stopAll(): Promise<void> {
  for (const child of children) child.kill(child.spawnfile.includes("nginx") ? "SIGQUIT" : "SIGTERM");
  if (children.size === 0) return;
  const exits = [...children].map((child) => once(child, "exit"));
  const killer = setTimeout(() => { for (const child of children) child.kill("SIGKILL"); }, 10_000);
  await Promise.all(exits);
  clearTimeout(killer);
}

async function demo(): Promise<void> {
  const nginx = findNginx();
  const version = spawnSync(nginx, ["-v"], { encoding: "utf8" }).stderr.trim();
  const [listen, portA, portB] = [await freePort(), await freePort(), await freePort()];
  const names = ["a", "b"] as const;
  const ports = { a: portA, b: portB };
  const [a, b] = await Promise.all([startInstance("a", portA), startInstance("b", portB)]);
  const instances = { a, b };
  const proxy = `http://127.0.0.1:${listen}`;
  await startNginx(nginx, writeNginxConfig(listen, [portA, portB]), listen);
  const health = new HealthWatch(new Map(names.map((n) => [n, `http://127.0.0.1:${ports[n]}`])));
  console.log(`${version} on ${proxy} → instance a (:${portA}), instance b (:${portB}), each start(${PROCESSES}); client from ${CLIENT_ADDRESS}`);

  // 1. Spread, and the client's address as the app sees it.
  const countedBefore = { a: await answered(portA), b: await answered(portB) };
  let load = new Load(proxy, CONCURRENCY, CLIENT_ADDRESS);
  await sleep(3000);
  let stats = await load.stop();
  const counted = { a: await answered(portA) - countedBefore.a, b: await answered(portB) - countedBefore.b };
  console.log(`1. spread:          ${describe(stats)}`);
  console.log(`   per process:     ${[...stats.byPid].map(([pid, n]) => `${pid}: ${n}`).join(", ")}`);
  console.log(`   the app saw:     remoteIp ${[...stats.remoteIps].join(", ")}, X-Forwarded-For ${[...stats.forwardedFor].join(", ")} (nginx connects from 127.0.0.1)`);
  console.log(`   /metrics:        a counted ${counted.a}, b counted ${counted.b} (each scrape answered by one child, covering both)`);
  for (const name of names) {
    check(counted[name] === (stats.byInstance.get(name) ?? 0), `metrics: instance ${name} counted ${counted[name]} /whoami requests, the client got ${stats.byInstance.get(name) ?? 0} answers from it`);
  }
  check(stats.failures.length === 0, `spread: ${stats.failures.length} failures (${stats.failures[0]})`);
  for (const name of names) check((stats.byInstance.get(name) ?? 0) > 0, `spread: instance ${name} served nothing`);
  check(stats.remoteIps.size === 1 && stats.remoteIps.has(CLIENT_ADDRESS), `the app saw remoteIp ${[...stats.remoteIps].join(", ")}, not ${CLIENT_ADDRESS}`);

  // 2. Stop instance b under load, then bring it back.
  const aBefore = await answered(portA);
  let aAnswered = 0;
  load = new Load(proxy, CONCURRENCY, CLIENT_ADDRESS);
  let errorsBefore = upstreamErrors();
  await sleep(1000);
  const stopAt = performance.now();
  instances.b.kill("SIGTERM");
  const [code] = await once(instances.b, "exit") as [number | null];
  load.mark();
  await sleep(1500);
  stats = await load.stop();
  aAnswered += stats.byInstance.get("a") ?? 0;
  console.log(`2. b stopped:       ${describe(stats)}; b drained and exited ${code} in ${seconds(performance.now() - stopAt)}; after it exited: ${[...stats.afterMark].map(([n, c]) => `${n} ${c}`).join(", ")}; nginx upstream errors (retried): ${upstreamErrors() - errorsBefore}`);
  check(stats.failures.length === 0, `stop: ${stats.failures.length} failures (${stats.failures[0]})`);
  check(code === 0, `instance b exited with ${code} on SIGTERM, not 0`);
  check((stats.afterMark.get("b") ?? 0) === 0, "stop: instance b answered after it exited");
  const restartAt = performance.now();
  instances.b = await startInstance("b", portB);
  const readyIn = performance.now() - restartAt;
  load = new Load(proxy, CONCURRENCY, CLIENT_ADDRESS);
  await sleep(2500); // nginx's fail_timeout (2 s) before it tries b again
  stats = await load.stop();
  aAnswered += stats.byInstance.get("a") ?? 0;
  const aCounted = await answered(portA) - aBefore;
  const bCounted = await answered(portB);
  console.log(`   b restarted:     ready in ${seconds(readyIn)}; next ${describe(stats)}`);
  console.log(`   /metrics:        a counted ${aCounted} through phase 2 (the client got ${aAnswered}); the new b counted ${bCounted} (the client got ${stats.byInstance.get("b") ?? 0})`);
  check(aCounted === aAnswered, `metrics: instance a counted ${aCounted} /whoami requests in phase 2, the client got ${aAnswered}`);
  check(bCounted === (stats.byInstance.get("b") ?? 0), `metrics: the restarted b counted ${bCounted}, the client got ${stats.byInstance.get("b") ?? 0}`);
  check(stats.failures.length === 0, `restart: ${stats.failures.length} failures (${stats.failures[0]})`);
  check((stats.byInstance.get("b") ?? 0) > 0, "restart: nginx sent nothing to the restarted instance b");

  // 3. Rolling reload: SIGHUP to a, wait until its children are all new, then b.
  load = new Load(proxy, CONCURRENCY, CLIENT_ADDRESS);
  const reloads: string[] = [];
  for (const name of names) {
    const before = childPids(instances[name]);
    const at = performance.now();
    instances[name].kill("SIGHUP");
    let after = before;
    while (performance.now() - at < 20_000) {
      await sleep(100);
      after = childPids(instances[name]);
      if (after.length === PROCESSES && after.every((pid) => !before.includes(pid))) break;
    }
    const replaced = after.length === PROCESSES && after.every((pid) => !before.includes(pid));
    check(replaced, `reload: instance ${name}'s children ${before.join(",")} were not all replaced within 20 s (now ${after.join(",")})`);
    reloads.push(`${name} [${before.join(", ")}] → [${after.join(", ")}] in ${seconds(performance.now() - at)}`);
  }
  await sleep(500);
  stats = await load.stop();
  console.log(`3. rolling reload:  ${describe(stats)}`);
  console.log(`   children:        ${reloads.join("; ")}`);
  check(stats.failures.length === 0, `reload: ${stats.failures.length} failures (${stats.failures[0]})`);

  // 4. Crash: SIGKILL instance b's whole process group under load; requests it held are retried.
  load = new Load(proxy, CONCURRENCY, CLIENT_ADDRESS);
  errorsBefore = upstreamErrors();
  await sleep(1000);
  process.kill(-instances.b.pid!, "SIGKILL");
  await once(instances.b, "exit");
  load.mark();
  await sleep(1500);
  stats = await load.stop();
  console.log(`4. b killed (-9):   ${describe(stats)}; after it died: ${[...stats.afterMark].map(([n, c]) => `${n} ${c}`).join(", ")}; nginx upstream errors (retried): ${upstreamErrors() - errorsBefore}`);
  check(stats.failures.length === 0, `kill: ${stats.failures.length} failures (${stats.failures[0]})`);
  check((stats.afterMark.get("b") ?? 0) === 0, "kill: instance b answered after it died");

  console.log(`active /health checks (every 200 ms, beside nginx's passive ones): ${health.stop().join("; ")}`);
}

const guard = setTimeout(() => {
  console.error(`cluster-demo: not done after ${seconds(DEADLINE_MS)}; stopping`);
  void stopAll().finally(() => process.exit(1));
}, DEADLINE_MS);
guard.unref();
process.once("SIGINT", () => void stopAll().finally(() => process.exit(130)));

try {
  await demo();
} catch (err) {
  problems.push(err instanceof Error ? err.message : String(err));
} finally {
  await stopAll();
  clearTimeout(guard);
}
if (problems.length === 0) {
  rmSync(dir, { recursive: true, force: true });
  console.log(`cluster-demo: every check held (${seconds(performance.now() - started)})`);
} else {
  for (const problem of problems) console.error(`cluster-demo: FAILED: ${problem}`);
  console.error(`cluster-demo: nginx logs kept in ${dir}`);
  process.exitCode = 1;
}
