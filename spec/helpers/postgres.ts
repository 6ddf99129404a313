/**
 * A throwaway PostgreSQL server for specs: Debian's `postgresql` package (installed with
 * apt-get when missing and running as root), `initdb` in a temporary directory, the server on
 * a loopback port with its socket in that directory, stopped and removed in `t.teardown`.
 * When it cannot be had, `startPostgres` resolves to the reason, for `t.skip`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Test } from "tap";

/** A running server: `url` reaches its `postgres` database as the `postgres` superuser. */
export interface PostgresServer {
  readonly url: string;
  readonly version: string;
  /** A URL for a new, empty database on this server. */
  createDatabase(name: string): Promise<string>;
}

/** The server, or why there is none. */
export type PostgresResult = { server: PostgresServer } | { skip: string };

function binDir(): string | null {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a));
  return versions.length === 0 ? null : join(root, versions[0]!, "bin");
}

function installPostgres(): string | null {
  if (process.getuid?.() !== 0) return "PostgreSQL is not installed and the specs are not running as root (apt-get install postgresql)";
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const run = (args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync("apt-get", args, { env, encoding: "utf8", timeout: 600_000 });
  let result = run(["install", "-y", "--no-install-recommends", "postgresql"]);
  if (result.status !== 0) {
    run(["update"]);
    result = run(["install", "-y", "--no-install-recommends", "postgresql"]);
  }
  return result.status === 0 ? null : `apt-get install postgresql failed: ${String(result.stderr).trim().split("\n").slice(-3).join(" / ")}`;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

// PostgreSQL refuses to run as root: under root the server runs as the package's `postgres` user.
function runAs(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0) return null;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Starts a PostgreSQL server for the rest of test `t` (installing the package first when
 * possible), or resolves to the reason it cannot.
 */
export async function startPostgres(t: Test): Promise<PostgresResult> {
  let bin = binDir();
  if (bin === null) {
    const failure = installPostgres();
    if (failure !== null) return { skip: failure };
    bin = binDir();
    if (bin === null) return { skip: "apt-get installed postgresql but no initdb was found under /usr/lib/postgresql" };
  }
  const user = runAs();
  if (process.getuid?.() === 0 && user === null) return { skip: "running as root and there is no postgres user to run the server as" };
  const dir = mkdtempSync(join(tmpdir(), "typhoon-pg-"));
  if (user !== null) chownSync(dir, user.uid, user.gid);
  const owner = user === null ? {} : user;
  const data = join(dir, "data");
  const init = spawnSync(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
    { encoding: "utf8", ...owner, timeout: 120_000 });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { skip: `initdb failed: ${(init.stderr || init.stdout).trim().split("\n").slice(-3).join(" / ")}` };
  }
  const port = await freePort();
  const child = spawn(join(bin, "postgres"), [
    "-D", data, "-p", String(port), "-h", "127.0.0.1", "-k", dir, "-c", "fsync=off", "-c", "synchronous_commit=off",
    "-c", "full_page_writes=off",
  ], { stdio: ["ignore", "ignore", "pipe"], ...owner });
  t.teardown(() => stop(child, dir));
  try {
    await ready(child);
  } catch (err) {
    return { skip: `postgres did not start: ${(err as Error).message}` };
  }
  const version = spawnSync(join(bin, "postgres"), ["--version"], { encoding: "utf8" }).stdout.trim();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    server: {
      url,
      version,
      async createDatabase(name: string): Promise<string> {
        if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
        const { default: pg } = await import("pg");
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE ${name}`);
        } finally {
          await client.end();
        }
        return `postgres://postgres@127.0.0.1:${port}/${name}`;
      },
    },
  };
}

// The server says so on stderr once it accepts connections.
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`not ready within 60 s: ${text.slice(-500)}`)), 60_000);
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      text += chunk;
      if (text.includes("ready to accept connections")) { clearTimeout(timer); resolve(); }
    });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`exited with ${code}: ${text.slice(-500)}`)); });
  });
}

// SIGINT is PostgreSQL's "fast shutdown": clients disconnected, clean stop.
async function stop(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGINT");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dir, { recursive: true, force: true });
}
