/**
 * `make doctor` / `make flame` / `make heap`: profiles an app with clinic (doctor, flame,
 * heapprofiler) in one process, under load this script generates itself, and prints the path of
 * the HTML report it leaves under `.clinic/`.
 *
 *   node --import tsx scripts/profile.ts doctor                  # the demo app, mixed load
 *   APP=src/server.ts ROUTE=/api/items DURATION=20 node --import tsx scripts/profile.ts flame
 *
 * Environment: `APP` (default `scripts/app.ts`; any script that starts a server in this process),
 * `ROUTE` (comma-separated paths, each optionally weighted `path*N`; default for the demo app
 * `/*20,/json*20,/sleep/1*1`, else `/`), `DURATION` seconds of load (default 10), `CONNECTIONS`
 * (default 10), `DEST` (report directory, default `.clinic`).
 *
 * The app runs as `node --import tsx <APP>` with `PORT=0` and `PROCESSES=1` (clinic's doctor and
 * flame refuse cluster workers); clinic finds the port it listens on and starts the load
 * (`--on-port`), then stops the app when the load ends and writes the report. bubbleprof is left
 * out: on Node 20 it hangs after the load ends and writes hundreds of MB for a short run.
 *
 * flame runs the app compiled to JavaScript instead (`tsc --noCheck` into `.clinic/build/`): on
 * Node 20 tsx's loader runs on a second thread, V8 writes one tick log per thread, and clinic
 * flame draws whichever log it lists first, often the idle loader's. Compiled, there is one.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The clinic tools this script runs, by the name `make` uses. */
export const TOOLS = { doctor: "doctor", flame: "flame", heap: "heapprofiler" } as const;

/** One weighted request path of the load. */
export interface WeightedRoute {
  readonly path: string;
  readonly weight: number;
}

const DEMO_APP = "scripts/app.ts";
const DEMO_MIX = "/*20,/json*20,/sleep/1*1";

/**
 * Parses `ROUTE`: comma-separated paths, each optionally followed by `*N` (its share of requests).
 * Throws for a path that does not start with `/` or a weight that is not a positive integer.
 *
 * @example
 * parseRoutes("/*20,/json*20,/sleep/1*1"); // [{ path: "/", weight: 20 }, { path: "/json", weight: 20 }, ...]
 */
export function parseRoutes(spec: string): WeightedRoute[] {
  return spec.split(",").map((s) => s.trim()).filter((s) => s !== "").map((entry) => {
    const star = entry.lastIndexOf("*");
    const path = star === -1 ? entry : entry.slice(0, star);
    const weight = star === -1 ? 1 : Number(entry.slice(star + 1));
    if (!path.startsWith("/")) throw new Error(`ROUTE: ${JSON.stringify(entry)} must start with /`);
    if (!Number.isInteger(weight) || weight < 1) throw new Error(`ROUTE: the weight in ${JSON.stringify(entry)} must be a positive integer`);
    return { path, weight };
  });
}

/** The request sequence each connection cycles through: weights spread out, not in bursts. */
export function requestSequence(routes: readonly WeightedRoute[]): string[] {
  const total = routes.reduce((sum, r) => sum + r.weight, 0);
  const sent = routes.map(() => 0);
  const sequence: string[] = [];
  // Smooth weighted round-robin: at each step send the route furthest behind its share.
  for (let step = 1; step <= total; step++) {
    let best = 0;
    for (let i = 1; i < routes.length; i++) {
      if (step * routes[i]!.weight / total - sent[i]! > step * routes[best]!.weight / total - sent[best]!) best = i;
    }
    sent[best]!++;
    sequence.push(routes[best]!.path);
  }
  return sequence;
}

/** The `--load <port>` side, run by clinic once the app listens: autocannon over the route mix. */
async function generateLoad(port: number): Promise<void> {
  const autocannon = createRequire(import.meta.url)("autocannon") as (opts: object) => Promise<{
    requests: { total: number; average: number }; non2xx: number; errors: number; timeouts: number;
  }>;
  const sequence = requestSequence(parseRoutes(routeSpec()));
  const duration = Number(process.env["DURATION"] ?? 10);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: Number(process.env["CONNECTIONS"] ?? 10),
    duration,
    requests: sequence.map((path) => ({ method: "GET", path })),
  });
  console.log(`load: ${result.requests.total} requests in ${duration} s over ${[...new Set(sequence)].join(", ")}; `
    + `${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  if (result.requests.total === 0) console.error("load: no request was answered; is ROUTE right for this app?");
}

function routeSpec(): string {
  const route = process.env["ROUTE"];
  if (route !== undefined && route !== "") return route;
  return appPath() === resolve(root, DEMO_APP) ? DEMO_MIX : "/";
}

const root = fileURLToPath(new URL("../", import.meta.url));
const self = fileURLToPath(import.meta.url);

function appPath(): string {
  return resolve(root, process.env["APP"] || DEMO_APP);
}

// A run that was killed leaves node_trace.*.log files behind, and doctor refuses to start then.
function removeStaleTraces(): void {
  for (const name of readdirSync(root)) {
    if (/^node_trace\.\d+\.log$/.test(name)) rmSync(resolve(root, name), { force: true });
  }
}

/**
 * Compiles the app and everything it imports to JavaScript under `.clinic/build/` (inside the
 * repository, so `"type": "module"` and `node_modules` still apply); resolves to the entry's path.
 */
async function compileForFlame(app: string): Promise<string> {
  const outDir = resolve(root, ".clinic", "build");
  rmSync(outDir, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const args = [tsc, app, "--outDir", outDir, "--rootDir", root, "--module", "nodenext", "--moduleResolution", "nodenext",
    "--target", "es2022", "--allowImportingTsExtensions", "--rewriteRelativeImportExtensions", "--skipLibCheck",
    "--noCheck", "--types", "node"];
  console.log(`compiling ${relative(root, app)} for clinic flame (tsc --noCheck into .clinic/build/)`);
  const code = await new Promise<number | null>((done) => {
    spawn(process.execPath, args, { cwd: root, stdio: "inherit" }).once("exit", (c) => done(c));
  });
  const entry = resolve(outDir, relative(root, app)).replace(/\.(m|c)?ts$/, (_, kind: string | undefined) => `.${kind ?? ""}js`);
  if (code !== 0 || !existsSync(entry)) throw new Error(`tsc could not compile ${relative(root, app)} (exit ${code})`);
  return entry;
}

/** Runs one clinic tool over the app; resolves to the report's path, relative to the repository. */
async function profile(tool: keyof typeof TOOLS): Promise<string> {
  const duration = Number(process.env["DURATION"] ?? 10);
  if (!Number.isFinite(duration) || duration <= 0) throw new Error(`DURATION must be a positive number of seconds`);
  parseRoutes(routeSpec()); // fail before starting clinic when ROUTE is malformed
  removeStaleTraces();
  const clinic = createRequire(import.meta.url).resolve("clinic/bin.js");
  const dest = resolve(root, process.env["DEST"] || ".clinic");
  const onPort = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(self)} --load $PORT`;
  const typescript = /\.[cm]?ts$/.test(appPath());
  const command = !typescript ? ["node", appPath()]
    : tool === "flame" ? ["node", await compileForFlame(appPath())] : ["node", "--import", "tsx", appPath()];
  const args = [clinic, TOOLS[tool], "--open=false", `--dest=${dest}`, "--on-port", onPort, "--", ...command];
  console.log(`clinic ${TOOLS[tool]} on ${relative(root, appPath())}, ${duration} s of load on ${routeSpec()}`);
  const child = spawn(process.execPath, args, {
    cwd: root,
    detached: true, // its own process group, so a timeout can stop clinic, the app and the load together
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, NO_INSIGHT: "1", PORT: "0", PROCESSES: "1", FORCE_COLOR: "0" },
  });
  let out = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    process.stdout.write(chunk);
  });
  // Start-up, load, then clinic's analysis (tens of seconds for a long flame run).
  const limit = (duration + 120) * 1000;
  const timer = setTimeout(() => {
    console.error(`clinic did not finish within ${limit / 1000} s; stopping it`);
    try { process.kill(-child.pid!, "SIGKILL"); } catch { /* already gone */ }
  }, limit);
  const code = await new Promise<number | null>((done) => child.once("exit", (c) => done(c)));
  clearTimeout(timer);
  const m = /Generated HTML file is (file:\S+)/.exec(out);
  if (code !== 0 || m === null) throw new Error(`clinic ${TOOLS[tool]} failed (exit ${code}) without a report`);
  // clinic reports even when the app died before listening; a report without load is no report.
  if (!/^load: /m.test(out)) throw new Error(`the load never ran: ${relative(root, appPath())} did not start listening under clinic`);
  const report = fileURLToPath(m[1]!);
  const shown = relative(process.cwd(), report);
  return shown.startsWith("..") ? report : shown;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const loadAt = process.argv.indexOf("--load");
  if (loadAt !== -1) {
    await generateLoad(Number(process.argv[loadAt + 1]));
  } else {
    const tool = process.argv[2];
    if (tool === undefined || !(tool in TOOLS)) {
      console.error(`usage: profile.ts ${Object.keys(TOOLS).join("|")}   (env APP, ROUTE, DURATION, CONNECTIONS, DEST)`);
      process.exit(2);
    }
    try {
      const report = await profile(tool as keyof typeof TOOLS);
      console.log(`\nreport: ${report}`);
    } catch (error) {
      console.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    }
  }
}
