/**
 * typhoon's default logger and the process-wide `log`: JSON lines of pino's shape, readable text
 * lines, levels and the environment switches, child bindings, errors serialized, and setLogger
 * with a logger, a `(level, message)` sink, or nothing (the default again).
 */
import t, { type Test } from "tap";
import pino from "pino";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createLogger, log, setLogger, type Logger, type LogDestination } from "../../core/log.ts";

/** A destination that keeps what was written; JSON lines arrive within 10 ms, text lines once per event-loop turn. */
function memory(): LogDestination & { text(): string; lines(): Record<string, unknown>[] } {
  let text = "";
  return {
    write(chunk: string) { text += chunk; },
    text: () => text,
    lines: () => text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Runs `script` (an ES module) in a child process under tsx: its exit status and its stderr, sent to a file or a pipe. */
function runWithStderr(t: Test, script: string, to: "file" | "pipe"): { status: number | null; stderr: string } {
  const args = ["--import", "tsx", "--input-type=module", "-e", script];
  if (to === "pipe") {
    const child = spawnSync(process.execPath, args, { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
    return { status: child.status, stderr: child.stderr };
  }
  const dir = mkdtempSync(join(tmpdir(), "typhoon-log-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fd = openSync(join(dir, "stderr.log"), "w");
  const child = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", fd] });
  closeSync(fd);
  return { status: child.status, stderr: readFileSync(join(dir, "stderr.log"), "utf8") };
}

const LOG_MODULE = JSON.stringify(new URL("../../core/log.ts", import.meta.url).href);

// Longer than the JSON format's default flush delay (10 ms).
const turn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 40));

t.test("JSON lines have pino's shape: numeric level, time, pid, hostname, fields, msg", async (t) => {
  const out = memory();
  const logger = createLogger({ format: "json", destination: out });
  logger.info({ user: 7 }, "signed in");
  logger.warn("plain message");
  await turn();
  const [first, second] = out.lines();
  t.match(first, { level: 30, pid: process.pid, user: 7, msg: "signed in" });
  t.type(first!["time"], "number");
  t.type(first!["hostname"], "string");
  t.match(second, { level: 40, msg: "plain message" });
});

t.test("levels below the chosen one are dropped; TYPHOON_LOG_LEVEL and TYPHOON_LOG_FORMAT choose", async (t) => {
  const out = memory();
  const logger = createLogger({ format: "json", level: "warn", destination: out });
  logger.debug("d");
  logger.info("i");
  logger.warn("w");
  logger.error("e");
  await turn();
  t.same(out.lines().map((l) => l["msg"]), ["w", "e"]);
  const saved = { level: process.env["TYPHOON_LOG_LEVEL"], format: process.env["TYPHOON_LOG_FORMAT"] };
  t.teardown(() => {
    for (const [key, value] of [["TYPHOON_LOG_LEVEL", saved.level], ["TYPHOON_LOG_FORMAT", saved.format]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });
  process.env["TYPHOON_LOG_LEVEL"] = "debug";
  process.env["TYPHOON_LOG_FORMAT"] = "text";
  const text = memory();
  const fromEnv = createLogger({ destination: text });
  fromEnv.debug({ k: "v" }, "debug shown");
  await turn();
  t.match(text.text(), /^\d\d:\d\d:\d\d\.\d{3} DEBUG debug shown k=v\n$/);
});

t.test("child bindings are on every record; an error is serialized with type, message and stack", async (t) => {
  const out = memory();
  const logger = createLogger({ format: "json", destination: out }).child({ reqId: "abc" });
  logger.child({ part: "db" }).error({ err: new TypeError("bad row") }, "query failed");
  logger.error(new Error("alone"));
  await turn();
  const [first, second] = out.lines();
  t.match(first, { reqId: "abc", part: "db", msg: "query failed", err: { type: "TypeError", message: "bad row" } });
  t.match((first!["err"] as { stack: string }).stack, /TypeError: bad row/);
  t.match(second, { reqId: "abc", msg: "alone", err: { message: "alone" } });
});

t.test("text lines are readable: time, level, message, fields, then the stack", async (t) => {
  const out = memory();
  const logger = createLogger({ format: "text", destination: out });
  logger.child({ reqId: "r1" }).error({ err: new Error("kaput"), status: 500 }, "request failed");
  await turn();
  t.match(out.text(), /^\d\d:\d\d:\d\d\.\d{3} ERROR request failed reqId=r1 status=500\nError: kaput\n {4}at /);
});

t.test("a record whose fields cannot be serialized is still written", async (t) => {
  const out = memory();
  const cyclic: Record<string, unknown> = {};
  cyclic["self"] = cyclic;
  createLogger({ format: "json", destination: out }).info(cyclic, "still here");
  await turn();
  t.match(out.lines()[0], { msg: "still here", fields: "[unserializable]" });
});

t.test("setLogger: a sink gets messages (with an error's stack), a logger gets records, none restores the default", async (t) => {
  const seen: string[] = [];
  const previous = setLogger((level, message) => seen.push(`${level}: ${message}`));
  t.teardown(() => { setLogger(previous); });
  log.warn("careful");
  log.error("broke", new Error("why"));
  log.child({ reqId: "x" }).info({ status: 200 }, "done");
  t.equal(seen[0], "warn: careful");
  t.match(seen[1], /^error: broke\nError: why\n/);
  t.equal(seen[2], "info: done");

  const out = memory();
  setLogger(createLogger({ format: "json", destination: out }));
  log.child({ reqId: "x" }).info({ status: 200 }, "done");
  await turn();
  t.match(out.lines()[0], { reqId: "x", status: 200, msg: "done" });
});

t.test("a pino() logger fits the Logger interface and receives the framework's records", async (t) => {
  const chunks: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { chunks.push(chunk.toString()); done(); } });
  const logger: Logger = pino({ level: "debug" }, sink);
  const previous = setLogger(logger);
  t.teardown(() => { setLogger(previous); });
  log.child({ reqId: "p1" }).warn({ status: 404 }, "not found");
  log.error("old form", new Error("with an error"));
  await new Promise((resolve) => setTimeout(resolve, 20));
  const records = chunks.join("").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(records[0], { level: 40, reqId: "p1", status: 404, msg: "not found" });
  t.match(records[1], { level: 50, msg: "old form", err: { message: "with an error" } });
});

t.test("the access record rendered for typhoon's JSON logger equals the one its fields give any other logger", async (t) => {
  const { writeAccessLog } = await import("../../core/web/access-log.ts");
  const facts = {
    reqId: 'client"id\\1', method: "GET", path: '/a"b\\c/\u2028', route: "/(?<name>[^/]+)", status: 404,
    ms: 0.42, bytes: 12, remoteIp: "::1", taskId: null,
  };
  const out = memory();
  writeAccessLog(createLogger({ format: "json", destination: out }).child({ app: "x" }), facts);
  // A logger that is not typhoon's own receives the fields object and the same message.
  const seen: { fields: object; msg: string }[] = [];
  const other: Logger = {
    debug() {}, warn() {}, error() {}, child() { return other; },
    info(fields: object | string, msg?: unknown) { seen.push({ fields: fields as object, msg: msg as string }); },
  };
  writeAccessLog(other, facts);
  await turn();
  const [record] = out.lines();
  t.strictSame(Object.keys(record!), ["level", "time", "pid", "hostname", "app", ...Object.keys(facts), "msg"], "pino's order, then the bindings, the fields and msg");
  t.match(record, { level: 30, app: "x", ...facts, msg: `404 GET ${facts.path} (::1) 0.42ms` });
  t.equal(seen[0]!.fields, facts);
  t.equal(seen[0]!.msg, record!["msg"]);
  // Tornado prints the time with 2 decimals (`%.2fms`); the field stays a number.
  const whole = memory();
  writeAccessLog(createLogger({ format: "json", destination: whole }), { ...facts, ms: 3, taskId: 2 });
  writeAccessLog(other, { ...facts, ms: 3 });
  await turn();
  t.match(whole.lines()[0], { ms: 3, taskId: 2, msg: `404 GET ${facts.path} (::1) 3.00ms` });
  t.equal(seen[1]!.msg, `404 GET ${facts.path} (::1) 3.00ms`);
  // A pino-style logger above info (isLevelEnabled) is not handed the record at all.
  let handed = 0;
  const warnOnly = { ...other, isLevelEnabled: (level: string) => level !== "info" && level !== "debug", info() { handed++; } } as Logger;
  writeAccessLog(warnOnly, facts);
  t.equal(handed, 0);
  // Below the logger's level nothing is written; the text format gets a readable line.
  const quiet = memory();
  writeAccessLog(createLogger({ format: "json", level: "warn", destination: quiet }), facts);
  const text = memory();
  writeAccessLog(createLogger({ format: "text", destination: text }), facts);
  await turn();
  t.equal(quiet.text(), "");
  t.match(text.text(), /INFO  404 GET \/a"b\\c\/\u2028 \(::1\) 0\.42ms reqId=client"id\\1 /);
});

t.test("access records rendered with their batch keep their order, their time, and leave at exit", async (t) => {
  const { writeAccessLog } = await import("../../core/web/access-log.ts");
  const facts = { reqId: "r", method: "GET", path: "/", route: "/", status: 200, ms: 1, bytes: 2, remoteIp: "::1", taskId: null };
  const writes: string[] = [];
  const logger = createLogger({ format: "json", destination: { write: (text: string) => writes.push(text) }, flushMs: 60_000 });
  const before = Date.now();
  writeAccessLog(logger, { ...facts, reqId: "first" });
  const after = Date.now();
  logger.info("between");
  writeAccessLog(logger, { ...facts, reqId: "last" });
  // Records waiting (256 at most) are rendered and written without waiting for flushMs.
  for (let i = 0; i < 300; i++) writeAccessLog(logger, { ...facts, reqId: `many-${i}` });
  const lines = writes.join("").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(lines.slice(0, 3).map((l) => l["reqId"] ?? l["msg"]), ["first", "between", "last"], "an immediate record waits for the deferred one before it");
  t.ok(lines.length >= 200, "written before flushMs");
  t.same(lines.slice(3).map((l) => l["reqId"]), Array.from({ length: lines.length - 3 }, (_, i) => `many-${i}`), "in order");
  // Worked out from the monotonic clock and one Date.now() per batch: within Date.now()'s 1 ms step.
  const time = lines[0]!["time"] as number;
  t.ok(Number.isInteger(time) && time >= before - 1 && time <= after + 1, `time ${time} is when the record was logged (${before}–${after}), not when it was written`);
  // Rendered 60 ms later, the record still has the time it was logged at.
  const late: string[] = [];
  const lateLogger = createLogger({ format: "json", destination: { write: (text: string) => late.push(text) }, flushMs: 150 });
  const loggedAt = Date.now();
  writeAccessLog(lateLogger, facts);
  await new Promise((resolve) => setTimeout(resolve, 60));
  lateLogger.info("now");
  await new Promise((resolve) => setTimeout(resolve, 200));
  const [queued, now] = late.join("").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { time: number });
  t.ok(Math.abs(queued!.time - loggedAt) <= 2, `logged at ${loggedAt}, record says ${queued!.time}`);
  t.ok(now!.time - queued!.time >= 55, "the record written at once says when it was");
  // A process that exits with access records waiting writes them.
  const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e",
    `const { createLogger } = await import(${LOG_MODULE});
     const { writeAccessLog } = await import(${JSON.stringify(new URL("../../core/web/access-log.ts", import.meta.url).href)});
     const logger = createLogger({ format: "json", destination: process.stdout, flushMs: 60_000 });
     writeAccessLog(logger, ${JSON.stringify({ ...facts, reqId: "at-exit" })}); process.exit(4);`,
  ], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  t.equal(child.status, 4);
  t.match(child.stdout, /"reqId":"at-exit"/);
});

t.test("JSON lines are written together after flushMs, at once past 16 KiB, and what is pending at exit", async (t) => {
  const writes: string[] = [];
  const logger = createLogger({ format: "json", destination: { write: (text: string) => writes.push(text) }, flushMs: 30 });
  logger.info("one");
  logger.info("two");
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(writes.length, 0, "nothing yet after an event-loop turn");
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.equal(writes.length, 1, "both lines in one write");
  t.match(writes[0], /"msg":"one"[^\n]*\n[^\n]*"msg":"two"/);
  logger.info({ filler: "x".repeat(17_000) }, "big");
  t.equal(writes.length, 2, "past 16 KiB the batch is written at once");
  // Many small lines past 16 KiB: written at once too, whole and in order, text of any script kept.
  writes.length = 0;
  for (let i = 0; i < 200; i++) logger.info({ i, word: "héllo ✓ 𝄞" }, `line ${i}`);
  t.ok(writes.length >= 1, "written before flushMs");
  logger.info({ filler: "y".repeat(9_000) }, "long");
  await new Promise((resolve) => setTimeout(resolve, 60));
  const lines = writes.join("").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(lines.map((l) => l["msg"]), [...Array.from({ length: 200 }, (_, i) => `line ${i}`), "long"], "every line once, in order");
  t.equal(lines[7]!["word"], "héllo ✓ 𝄞");
  t.equal((lines[200]!["filler"] as string).length, 9_000);
  // Text lines (a person reading a terminal) go out every event-loop turn unless told otherwise.
  const text: string[] = [];
  createLogger({ format: "text", destination: { write: (line: string) => text.push(line) } }).info("now");
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(text.length, 1);
  t.throws(() => createLogger({ flushMs: -1 }), RangeError);
  // A process that exits with a line pending still writes it.
  const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e",
    `const { createLogger } = await import(${LOG_MODULE});
     createLogger({ format: "json", destination: process.stdout, flushMs: 60_000 }).info("last words"); process.exit(3);`,
  ], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  t.equal(child.status, 3);
  const out = child.stdout;
  t.match(out, /"msg":"last words"/);
});

t.test("stderr redirected to a file is written straight to its descriptor, a pipe through the stream: the same lines either way", async (t) => {
  // The default logger (stderr, JSON); stream writes are counted (on the stream's prototype: a
  // write() of its own is an app's, which gets the lines): the logger's batches must not go
  // through the stream when stderr is a file. Past 16 KiB a batch is written at once; the
  // last lines wait for exit; console.error writes through the stream in between.
  const script = `const { createLogger } = await import(${LOG_MODULE});
    let owner = Object.getPrototypeOf(process.stderr);
    while (!Object.hasOwn(owner, "write")) owner = Object.getPrototypeOf(owner);
    let streamWrites = 0; const write = owner.write;
    owner.write = function (...args) { if (this === process.stderr) streamWrites++; return write.apply(this, args); };
    const logger = createLogger({ format: "json", flushMs: 60_000 });
    for (let i = 0; i < 300; i++) logger.info({ i, word: "héllo ✓ 𝄞" }, "line " + i);
    console.error("from console.error");
    logger.info("at exit");
    process.on("exit", () => { write.call(process.stderr, "stream writes " + streamWrites + "\\n"); });
    process.exit(5);`;
  for (const to of ["file", "pipe"] as const) {
    const { status, stderr } = runWithStderr(t, script, to);
    t.equal(status, 5, `${to}: the child's own exit status`);
    const lines = stderr.split("\n").filter((l) => l !== "");
    const records = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msg: string; word?: string });
    t.same(records.map((r) => r.msg), [...Array.from({ length: 300 }, (_, i) => `line ${i}`), "at exit"], `${to}: every record once, in order`);
    t.equal(records[299]!.word, "héllo ✓ 𝄞", `${to}: text of any script kept`);
    t.ok(lines.includes("from console.error"), `${to}: the stream's own line is there`);
    const counted = Number(/^stream writes (\d+)$/m.exec(stderr)?.[1]);
    if (to === "file") t.equal(counted, 1, "file: only console.error went through the stream");
    else t.ok(counted >= 3, `pipe: the batches went through the stream (${counted} writes)`);
  }
});

t.test("an app that replaced stderr's write() gets the logger's lines, even with stderr a file", async (t) => {
  const script = `const { createLogger } = await import(${LOG_MODULE});
    const captured = []; const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (text) => { captured.push(String(text)); return true; };
    const logger = createLogger({ format: "json", flushMs: 60_000 });
    for (let i = 0; i < 3; i++) logger.info("line " + i);
    process.on("exit", () => { write("captured " + JSON.stringify(captured.join("")) + "\\n"); });
    process.exit(0);`;
  const { status, stderr } = runWithStderr(t, script, "file");
  t.equal(status, 0);
  const captured = /^captured (.*)$/m.exec(stderr)?.[1];
  t.ok(captured !== undefined, "the child reported what it captured");
  const lines = (JSON.parse(captured ?? '""') as string).split("\n").filter((l) => l !== "").map((l) => (JSON.parse(l) as { msg: string }).msg);
  t.same(lines, ["line 0", "line 1", "line 2"], "every line went through the replaced write()");
  t.notMatch(stderr, /"msg":"line 0"/, "none went to the file behind it");
});
