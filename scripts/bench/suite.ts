/**
 * The benchmark suite: which servers are measured against which, one row per pair. typhoon and
 * each peer are loaded at the same time in every round by default (see `harness.ts`), so every
 * ratio compares figures taken in the same seconds, on the same machine, under the same noise.
 */
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { measurePairs, pairRow, type Pair, type PairOptions, type Row, type Target } from "./harness.ts";
import { PLAINTEXT_PIPELINING, PREFIX, ROUTE_COUNT, firstRulePath, lastRulePath } from "./peers/serve.ts";

/** One row: typhoon (the pair's subject) against one peer. */
interface PairSpec extends Pair {
  readonly name: string;
  readonly peerName: string;
  readonly extra?: Partial<Row>;
}

/** One measured group: its pairs, each a row. */
interface Group {
  readonly title: string;
  readonly pairs: readonly PairSpec[];
}

function target(label: string, peer: string, scenario: string, path: string, pipelining?: number): Target {
  return { key: `${label} ${path}`, server: { label, peer, scenario }, path, ...(pipelining === undefined ? {} : { pipelining }) };
}

/** The ratios typhoon aims for on every HTTP shape (issue 17): at least Fastify, and 0.95 of node:http used well. */
const VS_NODE = 0.95;
const VS_FASTIFY = 1;

/** typhoon against node:http, Fastify (and Express when it serves the scenario) on one path. */
function shapeGroup(title: string, scenario: string, path: string, options: { express?: boolean; pipelining?: number; control?: boolean } = {}): Group {
  const { express = false, pipelining, control = false } = options;
  const typhoon = target("typhoon", "typhoon", scenario, path, pipelining);
  const versus = (label: string, peer: string, peerName: string, extra?: Partial<Row>): PairSpec =>
    ({ subject: typhoon, peer: target(label, peer, scenario, path, pipelining), name: title, peerName, ...(extra === undefined ? {} : { extra }) });
  return {
    title,
    pairs: [
      versus("node:http", "node-http", "node:http", { target: VS_NODE }),
      versus("fastify", "fastify", "Fastify", { target: VS_FASTIFY }),
      ...(express ? [versus("express", "express", "Express")] : []),
      // Two identical typhoon servers: how far from 1.00× the method itself reads.
      ...(control ? [versus("typhoon", "typhoon", "typhoon (A/A control)", { note: "the same server twice: the measuring method's own error" })] : []),
    ],
  };
}

const GROUPS: readonly Group[] = [
  shapeGroup("hello world", "hello", "/", { express: true, control: true }),
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
  const typhoon = (path: string): Target => target("typhoon", "typhoon", scenario, path);
  const pair = (path: string, rule: string, label2: string, peer: string, peerName: string, targetRatio: number): PairSpec =>
    ({ subject: typhoon(path), peer: target(label2, peer, scenario, path), name: `${label}, ${rule} rule`, peerName, extra: { target: targetRatio } });
  return {
    title: base === "" ? `${ROUTE_COUNT}-route table` : `${ROUTE_COUNT}-route table under one prefix`,
    pairs: [
      pair(first, "first", "fastify", "fastify", "Fastify, same routes", VS_FASTIFY),
      pair(last, "last", "fastify", "fastify", "Fastify, same routes", VS_FASTIFY),
      pair(first, "first", "node:http", "node-http", "node:http, same regexes in order", VS_NODE),
      pair(last, "last", "node:http", "node-http", "node:http, same regexes in order", VS_NODE),
      { subject: typhoon(last), peer: typhoon(first), name: `${label}, last rule vs first`, peerName: "typhoon, first rule", extra: { target: 0.9 } },
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
export interface SuiteOptions extends PairOptions {
  readonly only?: string;
  readonly contributed: boolean;
}

/** The rows of the whole suite, in table order. `say` receives progress lines and notes. */
export async function runSuite(options: SuiteOptions, say: (line: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  for (const group of GROUPS) {
    if (options.only !== undefined && !group.title.includes(options.only)) continue;
    say(`${group.title}: ${group.pairs.map((p) => `${p.subject.key} vs ${p.peer.key}`).join(", ")} (${options.method})`);
    const results = await measurePairs(group.pairs, options, say);
    rows.push(...group.pairs.map((p, i) => pairRow(results[i]!, options.method, p.name, p.peerName, p.extra)));
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
