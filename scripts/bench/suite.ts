/**
 * The benchmark suite: which servers are measured against which, and how samples become rows.
 * Each group of peers is measured together in interleaved rounds (see `harness.ts`), so every
 * ratio compares figures taken minutes apart at most, on the same machine, under the same noise.
 */
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { median, measure, type LoadOptions, type Row, type Samples, type Target } from "./harness.ts";
import { PLAINTEXT_PIPELINING, PREFIX, ROUTE_COUNT, firstRulePath, lastRulePath } from "./peers/serve.ts";

/** A server whose median CPU use is below this share of a core was not the bottleneck. */
const SATURATED = 0.85;

/** One measured group: its targets and how its samples become rows. */
interface Group {
  readonly title: string;
  readonly targets: readonly Target[];
  readonly rows: (stats: Stats) => Row[];
}

/** Median throughput, CPU share and CPU µs per request, per target key. */
type Stats = ReadonlyMap<string, { rps: number; cpu: number; cpuUs: number }>;

function target(label: string, peer: string, scenario: string, path: string, pipelining?: number): Target {
  return { key: `${label} ${path}`, server: { label, peer, scenario }, path, ...(pipelining === undefined ? {} : { pipelining }) };
}

/** The ratios typhoon aims for on every HTTP shape (issue 17): at least Fastify, and 0.95 of node:http used well. */
const VS_NODE = 0.95;
const VS_FASTIFY = 1;

/**
 * One row: typhoon against one peer. Its figures are requests per server CPU-second (requests
 * served ÷ the server process's user + system CPU time), which moves far less than req/s when
 * neighbours share the machine; req/s stands beside them. Without CPU figures (not Linux) the
 * row falls back to req/s.
 */
function row(stats: Stats, name: string, typhoonKey: string, peerKey: string, peerName: string,
  extra: Partial<Row> = {}): Row {
  const t = stats.get(typhoonKey)!;
  const p = stats.get(peerKey)!;
  const notes = new Set(extra.note === undefined ? [] : [extra.note]);
  for (const [key, s] of [[typhoonKey, t], [peerKey, p]] as const) {
    if (s.cpu < SATURATED) notes.add(`${key.split(" ")[0]} server at ${Math.round(s.cpu * 100)}% of its core`);
  }
  const note = [...notes].join("; ");
  const perCpu = t.cpuUs > 0 && p.cpuUs > 0 && Number.isFinite(t.cpuUs) && Number.isFinite(p.cpuUs);
  const typhoon = perCpu ? 1e6 / t.cpuUs : t.rps;
  const peer = perCpu ? 1e6 / p.cpuUs : p.rps;
  return {
    name, unit: perCpu ? "req/CPU-s" : "req/s", typhoon: Math.round(typhoon), peer: Math.round(peer), peerName, ratio: typhoon / peer,
    higherIsBetter: true, ...extra, ...(note === "" ? {} : { note }),
    ...(perCpu ? { typhoonCpuUs: round1(t.cpuUs), peerCpuUs: round1(p.cpuUs), typhoonRps: Math.round(t.rps), peerRps: Math.round(p.rps) } : {}),
  };
}

/** typhoon, node:http, Fastify (and Express when it serves the scenario) on one path, one row per peer. */
function shapeGroup(title: string, scenario: string, path: string, options: { express?: boolean; pipelining?: number } = {}): Group {
  const { express = false, pipelining } = options;
  const targets = [
    target("typhoon", "typhoon", scenario, path, pipelining), target("node:http", "node-http", scenario, path, pipelining),
    target("fastify", "fastify", scenario, path, pipelining),
    ...(express ? [target("express", "express", scenario, path, pipelining)] : []),
  ];
  return {
    title,
    targets,
    rows: (s) => [
      row(s, title, `typhoon ${path}`, `node:http ${path}`, "node:http", { target: VS_NODE }),
      row(s, title, `typhoon ${path}`, `fastify ${path}`, "Fastify", { target: VS_FASTIFY }),
      ...(express ? [row(s, title, `typhoon ${path}`, `express ${path}`, "Express")] : []),
    ],
  };
}

const GROUPS: readonly Group[] = [
  shapeGroup("hello world", "hello", "/", { express: true }),
  shapeGroup("JSON response /json", "json", "/json", { express: true }),
  shapeGroup(`plaintext, ${PLAINTEXT_PIPELINING} pipelined per connection`, "plaintext", "/plaintext", { pipelining: PLAINTEXT_PIPELINING }),
  shapeGroup("route with a group /users/(\\d+)", "group", "/users/42"),
  routeTableGroup(""),
  routeTableGroup(PREFIX),
];

/**
 * A 500-route table hit at its first and its last rule: typhoon, Fastify and node:http (a
 * hand-written list of the same regexes) with the same routes. Without a base every rule has its
 * own first segment; under one base (`/api`) they share it.
 */
function routeTableGroup(base: string): Group {
  const first = firstRulePath(base);
  const last = lastRulePath(base);
  const label = base === "" ? `${ROUTE_COUNT} routes` : `${ROUTE_COUNT} routes under ${base}/`;
  const scenario = base === "" ? "routes" : "prefixed";
  return {
    title: base === "" ? `${ROUTE_COUNT}-route table` : `${ROUTE_COUNT}-route table under one prefix`,
    targets: [
      target("typhoon", "typhoon", scenario, first), target("typhoon", "typhoon", scenario, last),
      target("fastify", "fastify", scenario, first), target("fastify", "fastify", scenario, last),
      target("node:http", "node-http", scenario, first), target("node:http", "node-http", scenario, last),
    ],
    rows: (s) => [
      row(s, `${label}, first rule`, `typhoon ${first}`, `fastify ${first}`, "Fastify, same routes", { target: VS_FASTIFY }),
      row(s, `${label}, last rule`, `typhoon ${last}`, `fastify ${last}`, "Fastify, same routes", { target: VS_FASTIFY }),
      row(s, `${label}, first rule`, `typhoon ${first}`, `node:http ${first}`, "node:http, same regexes in order", { target: VS_NODE }),
      row(s, `${label}, last rule`, `typhoon ${last}`, `node:http ${last}`, "node:http, same regexes in order", { target: VS_NODE }),
      row(s, `${label}, last rule vs first`, `typhoon ${last}`, `typhoon ${first}`, "typhoon, first rule", { target: 0.9 }),
    ],
  };
}

/** The benchmarks other issues contribute, each a module exporting a function resolving to rows. */
const CONTRIBUTED = [
  { file: "executor.ts", fn: "runExecutorBench", title: "thread executor" },
  { file: "processes.ts", fn: "runProcessesBench", title: "processes" },
  { file: "blocking.ts", fn: "runBlockingBench", title: "blocking detection and overload shedding" },
  { file: "ops.ts", fn: "runOpsBench", title: "access log and metrics" },
] as const;

/** How long a contributed benchmark may run before the suite gives up on it and moves on. */
const CONTRIBUTED_LIMIT_MS = 10 * 60_000;

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Options of a suite run; `only` picks groups by title substring (e.g. `hello`). */
export interface SuiteOptions extends LoadOptions {
  readonly only?: string;
  readonly contributed: boolean;
}

/** The rows of the whole suite, in table order. `say` receives progress lines and notes. */
export async function runSuite(options: SuiteOptions, say: (line: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  for (const group of GROUPS) {
    if (options.only !== undefined && !group.title.includes(options.only)) continue;
    say(`${group.title}: ${group.targets.map((t) => t.key).join(", ")}`);
    const samples = await measure(group.targets, options, say);
    rows.push(...group.rows(summarise(samples)));
  }
  if (!options.contributed) return rows;
  for (const { file, fn, title } of CONTRIBUTED) {
    if (options.only !== undefined && !title.includes(options.only)) continue;
    const path = fileURLToPath(new URL(file, import.meta.url));
    if (!existsSync(path)) {
      say(`${title}: skipped, scripts/bench/${file} does not exist yet`);
      continue;
    }
    say(`${title}: scripts/bench/${file}`);
    try {
      const module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
      const run = module[fn];
      if (typeof run !== "function") throw new Error(`it does not export ${fn}()`);
      const running = (run as (o: object) => Promise<Row[]>)({ seconds: options.seconds, rounds: options.rounds });
      rows.push(...(await withTimeout(running, CONTRIBUTED_LIMIT_MS, `it did not finish within ${CONTRIBUTED_LIMIT_MS / 1000} s`)));
    } catch (error) {
      say(`${title}: skipped, scripts/bench/${file} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return rows;
}

function summarise(samples: ReadonlyMap<string, Samples>): Stats {
  return new Map([...samples].map(([key, s]) => [key, { rps: median(s.rps), cpu: median(s.cpu), cpuUs: median(s.cpuUs) }]));
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
