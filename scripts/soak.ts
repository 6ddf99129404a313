/**
 * `make soak`: minutes of mixed traffic against `start(2)` with a thread pool per child
 * (spec/fixtures/soak-app.ts): normal requests, malformed ones, slow clients, and routes that
 * throw, crash a thread or crash the whole child. Prints requests served, outcomes by kind,
 * child restarts, and the memory (RSS) of every process at start and end; exits 1 if any request
 * hung, got an answer it should not have, or the service was not healthy at the end.
 *
 * Environment: SOAK_SECONDS (default 180), SOAK_CONCURRENCY (default 16), PROCESSES (2),
 * THREADS (2), SOAK_EXIT_EVERY (seconds between deliberate child crashes, default 20; 0: none).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect, createServer } from "node:net";
import { fileURLToPath } from "node:url";

const env = process.env;
const SECONDS = Number(env["SOAK_SECONDS"] ?? 180);
const CONCURRENCY = Number(env["SOAK_CONCURRENCY"] ?? 16);
const PROCESSES = Number(env["PROCESSES"] ?? 2);
const EXIT_EVERY = Number(env["SOAK_EXIT_EVERY"] ?? 20);
// Longer than any queue a crashed thread's replacement can build: past it, a request is lost.
const HANG_MS = 30_000;
const SLOW_MS = 5_000;
const root = fileURLToPath(new URL("../", import.meta.url));
const after = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- The server under test --------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once("error", reject).listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

const port = await freePort();
const proc = spawn(process.execPath, ["--import", "tsx", "spec/fixtures/soak-app.ts"], {
  cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"],
  env: { ...env, PORT: String(port), PROCESSES: String(PROCESSES), THREADS: env["THREADS"] ?? "2", MAX_RESTARTS: "100000" },
});
const children = new Map<number, number>(); // pid → task
let supervisorPid = 0;
let childReadyLines = 0;
const logCounts = new Map<string, number>();
const errorCounts = new Map<string, number>();
let tail = "";
let errorNext = false;
const onOutput = (chunk: Buffer): void => {
  const lines = (tail + chunk.toString("utf8")).split("\n");
  tail = lines.pop() ?? "";
  for (const line of lines) {
    // The line after "Uncaught exception ..." names the error: count them by name and message.
    if (errorNext) errorCounts.set(line.slice(0, 100), (errorCounts.get(line.slice(0, 100)) ?? 0) + 1);
    errorNext = line.startsWith("Uncaught exception");
    const ready = /^child ready (\d+) (\d+)/.exec(line);
    if (ready) {
      children.set(Number(ready[2]), Number(ready[1]));
      childReadyLines++;
    }
    const sup = /^supervisor ready (\d+)/.exec(line);
    if (sup) supervisorPid = Number(sup[1]);
    // The app's own log: how many errors of each kind it reported.
    const kind = /^(Uncaught exception|\d{3} [A-Z]+|typhoon: [a-z ]+?(?=\d|\(|$))/.exec(line)?.[1]?.replace(/\d{3} ([A-Z]+)/, "$& (access log)");
    if (kind !== undefined) logCounts.set(kind, (logCounts.get(kind) ?? 0) + 1);
  }
};
proc.stdout.on("data", onOutput);
proc.stderr.on("data", onOutput);
const killAll = (): void => { try { process.kill(-proc.pid!, "SIGKILL"); } catch { /* gone */ } };
process.on("exit", killAll);
process.on("SIGINT", () => { killAll(); process.exit(130); });

const started = Date.now();
while (supervisorPid === 0 || children.size < PROCESSES) {
  if (Date.now() - started > 60_000 || proc.exitCode !== null) throw new Error("the soak app did not start");
  await after(50);
}

// ---- Memory -----------------------------------------------------------------------------------

function rssKb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

interface Samples { first: number; firstAt: number; last: number; lastAt: number; series: number[] }
const samples = new Map<number, Samples>();
function sample(): void {
  for (const pid of [supervisorPid, ...children.keys()]) {
    const kb = rssKb(pid);
    if (kb === null) continue;
    const now = Date.now();
    const s = samples.get(pid);
    if (s === undefined) samples.set(pid, { first: kb, firstAt: now, last: kb, lastAt: now, series: [kb] });
    else { s.last = kb; s.lastAt = now; s.series.push(kb); }
  }
}

// ---- Traffic ----------------------------------------------------------------------------------

interface Outcome { kind: string; result: string; expected: boolean; ms: number }
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function http(path: string, method = "GET", body?: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path, method, agent,
      headers: body ? { "content-length": String(body.length), "content-type": "application/octet-stream" } : {} }, (res) => {
      res.resume();
      res.on("end", () => resolve(String(res.statusCode)));
      res.on("error", () => resolve("error"));
    });
    req.setTimeout(HANG_MS, () => { req.destroy(); resolve("hang"); });
    req.on("error", (err: NodeJS.ErrnoException) => resolve(req.destroyed && err.message === "socket hang up" ? "conn cut" : `conn ${err.code ?? "error"}`));
    req.end(body);
  });
}

/** Raw bytes on a fresh connection: the status of the first answer, `closed`, or `hang`. */
function raw(chunks: readonly string[], gap = 0): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    let done = false;
    const finish = (result: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish("hang"), HANG_MS);
    socket.on("data", (chunk: Buffer) => {
      data += chunk.toString("latin1");
      const m = /^HTTP\/1\.\d (\d{3})/.exec(data);
      if (m && data.includes("\r\n\r\n")) finish(m[1]!);
    });
    socket.on("error", () => finish("closed"));
    socket.on("close", () => finish("closed"));
    socket.on("connect", async () => {
      for (const chunk of chunks) {
        if (done) return;
        socket.write(chunk, "latin1");
        if (gap) await after(gap);
      }
    });
  });
}

const MALFORMED = [
  "GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
  "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "GET /%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`, "GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
  "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
];
const body = Buffer.alloc(4096, 120);

type Kind = { name: string; weight: number; run: () => Promise<string>; expect: (result: string) => boolean };
const KINDS: Kind[] = [
  { name: "normal GET /", weight: 40, run: () => http("/"), expect: (r) => r === "200" },
  { name: "cpu on a thread", weight: 15, run: () => http("/cpu/2"), expect: (r) => r === "200" },
  { name: "POST 4 KiB", weight: 10, run: () => http("/echo", "POST", body), expect: (r) => r === "200" },
  { name: "slow answer", weight: 4, run: () => http("/slow/300"), expect: (r) => r === "200" },
  { name: "malformed", weight: 10, run: () => raw([MALFORMED[Math.floor(Math.random() * MALFORMED.length)]!]), expect: (r) => /^4\d\d$|^closed$/.test(r) },
  { name: "slowloris", weight: 2, run: () => raw("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1234567890\r\n\r\n".split(""), 80), expect: (r) => r === "408" || r === "closed" },
  { name: "handler throws", weight: 6, run: () => http("/throw"), expect: (r) => r === "500" },
  { name: "task throws", weight: 3, run: () => http("/task-error"), expect: (r) => r === "500" },
  { name: "thread crash", weight: 2, run: () => http("/thread-crash"), expect: (r) => r === "503" },
];
const totalWeight = KINDS.reduce((a, k) => a + k.weight, 0);
function pickKind(): Kind {
  let x = Math.random() * totalWeight;
  for (const kind of KINDS) if ((x -= kind.weight) < 0) return kind;
  return KINDS[0]!;
}

const tally = new Map<string, Map<string, number>>();
const unexpected = new Map<string, number>();
const slowest = new Map<string, number>();
const slowCount = new Map<string, number>();
let served = 0;
let hangs = 0;
function record({ kind, result, expected, ms }: Outcome): void {
  if (/^\d{3}$/.test(result)) slowest.set(kind, Math.max(slowest.get(kind) ?? 0, ms));
  if (/^\d{3}$/.test(result) && ms > SLOW_MS) slowCount.set(kind, (slowCount.get(kind) ?? 0) + 1);
  const byResult = tally.get(kind) ?? new Map<string, number>();
  byResult.set(result, (byResult.get(result) ?? 0) + 1);
  tally.set(kind, byResult);
  if (/^\d{3}$/.test(result)) served++;
  if (result === "hang") hangs++;
  if (!expected) unexpected.set(`${kind} → ${result}`, (unexpected.get(`${kind} → ${result}`) ?? 0) + 1);
}

const deadline = Date.now() + SECONDS * 1000;
let lastExit = Date.now();
let exits = 0;
// A request cut because its child was crashed on purpose is the visible error the client must
// get; anything else that is cut is unexpected.
let crashWindowUntil = 0;

async function worker(): Promise<void> {
  while (Date.now() < deadline) {
    if (EXIT_EVERY > 0 && Date.now() - lastExit > EXIT_EVERY * 1000) {
      lastExit = Date.now();
      exits++;
      crashWindowUntil = Date.now() + 3000;
      const begun = Date.now();
      const result = await http("/exit");
      record({ kind: "child crash (/exit)", result, expected: result.startsWith("conn"), ms: Date.now() - begun });
      continue;
    }
    const kind = pickKind();
    const begun = Date.now();
    const result = await kind.run();
    const cutByCrash = result.startsWith("conn") && begun <= crashWindowUntil;
    record({ kind: kind.name, result, expected: kind.expect(result) || cutByCrash, ms: Date.now() - begun });
  }
}

sample();
const rssStart = new Map([...samples].map(([pid, s]) => [pid, s.first]));
console.log(`soak: ${SECONDS} s, ${CONCURRENCY} clients, start(${PROCESSES}) with threads, port ${port}`);
const progress = setInterval(() => {
  sample();
  const elapsed = Math.round((Date.now() - started) / 1000);
  const total = [...tally.values()].reduce((a, m) => a + [...m.values()].reduce((x, y) => x + y, 0), 0);
  const rss = [supervisorPid, ...children.keys()].map(rssKb).filter((kb): kb is number => kb !== null).reduce((a, b) => a + b, 0);
  console.log(`  ${elapsed}s: ${total} requests, ${served} answered, ${[...unexpected.values()].reduce((a, b) => a + b, 0)} unexpected, `
    + `${hangs} hung, ${childReadyLines - PROCESSES} restarts, RSS ${(rss / 1024).toFixed(0)} MB`);
}, 10_000);
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
clearInterval(progress);
agent.destroy();

// ---- The end: health, memory, drain -------------------------------------------------------

await after(2000);
let healthy = false;
for (let i = 0; i < 50 && !healthy; i++) {
  healthy = (await http("/")) === "200" && (await http("/cpu/1")) === "200";
  if (!healthy) await after(200);
}
sample();
const live = [...children.keys()].filter((pid) => rssKb(pid) !== null);
process.kill(supervisorPid, "SIGTERM");
const exitCode = await Promise.race([new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code))), after(15_000).then(() => -1)]);

const mb = (kb: number | undefined): string => (kb === undefined ? "?" : `${(kb / 1024).toFixed(1)} MB`);
console.log("\n== soak results ==");
console.log(`duration ${SECONDS} s, requests answered ${served}, hung ${hangs}, child restarts ${childReadyLines - PROCESSES} (deliberate crashes ${exits})`);
for (const [kind, results] of tally) {
  const worst = slowest.get(kind);
  console.log(`  ${kind.padEnd(22)} ${[...results].sort().map(([r, n]) => `${r}×${n}`).join("  ")}${worst === undefined ? "" : `  (slowest answer ${worst} ms${slowCount.has(kind) ? `, ${slowCount.get(kind)} over ${SLOW_MS / 1000} s` : ""})`}`);
}
console.log(unexpected.size === 0 ? "unexpected outcomes: none" : `unexpected outcomes: ${[...unexpected].map(([k, n]) => `${k} ×${n}`).join("; ")}`);
console.log(`server log lines: ${[...logCounts].sort().map(([k, n]) => `${k.trim()} ×${n}`).join("; ")}`);
console.log(`server errors: ${[...errorCounts].sort().map(([k, n]) => `${k} ×${n}`).join("; ")}`);
const sup = samples.get(supervisorPid);
console.log(`RSS supervisor: ${mb(rssStart.get(supervisorPid))} → ${mb(sup?.last)}  [every 10 s: ${sup?.series.map((kb) => (kb / 1024).toFixed(0)).join(" ")} MB]`);
for (const pid of live) {
  const s = samples.get(pid);
  if (s === undefined) continue;
  console.log(`RSS child ${children.get(pid)} (pid ${pid}, up ${Math.round((s.lastAt - s.firstAt) / 1000)} s): ${mb(s.first)} → ${mb(s.last)}`
    + `  [every 10 s: ${s.series.map((kb) => (kb / 1024).toFixed(0)).join(" ")} MB]`);
}
const initial = [...rssStart].filter(([pid]) => pid !== supervisorPid).map(([, kb]) => kb);
console.log(`RSS children at start: ${initial.map((kb) => mb(kb)).join(", ")}`);
console.log(`final health: ${healthy ? "serving" : "NOT SERVING"}; SIGTERM → supervisor exit ${exitCode}`);
const ok = hangs === 0 && unexpected.size === 0 && healthy && exitCode === 0;
console.log(ok ? "soak: PASS" : "soak: FAIL");
process.exit(ok ? 0 : 1);
