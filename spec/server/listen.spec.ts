/**
 * Listen targets: a Unix socket path (a stale socket file is replaced, a live one or a regular
 * file is refused, socketMode applied), systemd's LISTEN_FDS/LISTEN_PID, and the Node versions
 * that have SO_REUSEPORT.
 */
import t from "tap";
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { listenFromEnvironment, listenOn, reusePortSupported, checkReusePort } from "../../core/server/listen.ts";
import { ErrorCode } from "../../core/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "typhoon-listen-"));

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

t.test("a Unix socket left by a dead process is replaced; socketMode sets its permissions", async (t) => {
  const path = join(dir, "stale.sock");
  // A socket file whose listener died without unlinking it (a killed process).
  const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  t.ok(statSync(path).isSocket(), "the stale socket file is there");
  const server = createServer((socket) => socket.end("hi"));
  await listenOn(server, { path, socketMode: 0o660 }, undefined);
  t.teardown(() => close(server));
  t.equal(statSync(path).mode & 0o777, 0o660);
});

t.test("a live socket or a regular file at the path is refused, never removed", async (t) => {
  const path = join(dir, "live.sock");
  const first = createServer();
  await listenOn(first, { path }, undefined);
  t.teardown(() => close(first));
  await t.rejects(listenOn(createServer(), { path }, undefined), { code: ErrorCode.SERVER_OPTION, message: /another process is listening/ });
  const file = join(dir, "plain.txt");
  writeFileSync(file, "keep me");
  await t.rejects(listenOn(createServer(), { path: file }, undefined), { message: /is not a socket/ });
  t.equal(statSync(file).size, 7, "the file is untouched");
});

t.test("invalid targets are refused with a clear error", async (t) => {
  await t.rejects(listenOn(createServer(), 70000, undefined), { code: ErrorCode.SERVER_OPTION, message: /Invalid port/ });
  await t.rejects(listenOn(createServer(), { fd: -1 }, undefined), { message: /descriptor/ });
  await t.rejects(listenOn(createServer(), { path: join(dir, "x.sock"), socketMode: 0o1777 }, undefined), { message: /socketMode/ });
});

t.test("listenFromEnvironment honours LISTEN_PID/LISTEN_FDS for this process only, then clears them", async (t) => {
  t.equal(listenFromEnvironment({}), null, "nothing passed");
  t.equal(listenFromEnvironment({ LISTEN_PID: String(process.pid + 1), LISTEN_FDS: "1" }), null, "for another process");
  t.equal(listenFromEnvironment({ LISTEN_PID: String(process.pid), LISTEN_FDS: "0" }), null, "no descriptors");
  const env: NodeJS.ProcessEnv = { LISTEN_PID: String(process.pid), LISTEN_FDS: "1", LISTEN_FDNAMES: "http" };
  t.same(listenFromEnvironment(env), { fd: 3 });
  t.same(env, {}, "children will not take the descriptor for theirs");
});

t.test("SO_REUSEPORT: Node 22.12+, 23.1+ and 24 have it; older Nodes get a clear error", async (t) => {
  t.equal(reusePortSupported("20.20.2"), false);
  t.equal(reusePortSupported("22.11.0"), false);
  t.equal(reusePortSupported("22.12.0"), true);
  t.equal(reusePortSupported("23.0.0"), false);
  t.equal(reusePortSupported("23.1.0"), true);
  t.equal(reusePortSupported("24.0.0"), true);
  if (reusePortSupported()) checkReusePort();
  else t.throws(() => checkReusePort(), { code: ErrorCode.UNSUPPORTED, message: /Node 22\.12\+/ });
});
