/**
 * Request metrics for `MetricsHandler`: what the request path records (plain counters and
 * histogram buckets, no library on the hot path), and the Prometheus exposition built from them
 * at scrape time with prom-client, which is loaded only then, by an app that serves metrics.
 *
 * Why not prom-client's own `Counter.inc(labels)` per request: it hashes the label object on
 * every call; a per-route table of plain numbers costs a few map reads. prom-client still does
 * the rest: the registry for custom metrics, the standard `process_*`/`nodejs_*` metrics, the
 * text format, and merging the children's metrics under `start(n)` (`AggregatorRegistry.aggregate`).
 *
 * Under `start(n)` a scrape answered by any child asks the supervisor, which gathers every
 * child's metrics over the cluster IPC channel (`metrics-gather.ts`) and answers with the sum;
 * per-process gauges carry a `task` label.
 */
import cluster from "node:cluster";
import type { Registry } from "prom-client";
import { log } from "../log.ts";
import { loopMonitor } from "../loop/loop-monitor.ts";
import { liveExecutors } from "../executor/pool.ts";
import { CHILD_MESSAGE } from "../server/handoff.ts";
import { taskId } from "../server/process.ts";
import { restartsMetric } from "../server/metrics-gather.ts";

/** The route label of requests no rule matched. */
export const NO_ROUTE = "(none)";

/** Histogram bounds of `typhoon_http_request_duration_seconds` (prom-client's defaults). */
const BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** How long a child waits for the supervisor's gathered metrics (ms). */
const GATHER_TIMEOUT_MS = 5_000;

/** One metric in prom-client's JSON form (`registry.getMetricsAsJSON()`), as aggregation takes it. */
export interface MetricJSON {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram" | "summary";
  aggregator: "sum" | "first" | "min" | "max" | "average" | "omit";
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

interface MethodStats {
  readonly byStatus: Map<number, number>;
  readonly buckets: number[];
  sum: number;
  count: number;
}

/** Counts of one process: requests by method/route/status, durations, and requests in flight. */
export class RequestMetrics {
  inFlight = 0;
  readonly #routes = new Map<string, Map<string, MethodStats>>();

  /** Records one finished request. */
  observe(method: string, route: string, status: number, seconds: number): void {
    let methods = this.#routes.get(route);
    if (methods === undefined) this.#routes.set(route, methods = new Map());
    let stats = methods.get(method);
    if (stats === undefined) {
      methods.set(method, stats = { byStatus: new Map(), buckets: new Array<number>(BUCKETS.length).fill(0), sum: 0, count: 0 });
    }
    stats.byStatus.set(status, (stats.byStatus.get(status) ?? 0) + 1);
    stats.sum += seconds;
    stats.count++;
    for (let i = 0; i < BUCKETS.length; i++) {
      if (seconds <= BUCKETS[i]!) {
        stats.buckets[i]!++;
        break;
      }
    }
  }

  /** The `typhoon_http_*` metrics in prom-client's JSON form. */
  toJSON(): MetricJSON[] {
    const requests: MetricJSON["values"] = [];
    const durations: MetricJSON["values"] = [];
    for (const [route, methods] of this.#routes) {
      for (const [method, stats] of methods) {
        for (const [status, count] of stats.byStatus) requests.push({ value: count, labels: { method, route, status } });
        let cumulative = 0;
        for (let i = 0; i < BUCKETS.length; i++) {
          cumulative += stats.buckets[i]!;
          durations.push({ value: cumulative, labels: { le: BUCKETS[i]!, method, route }, metricName: "typhoon_http_request_duration_seconds_bucket" });
        }
        durations.push({ value: stats.count, labels: { le: "+Inf", method, route }, metricName: "typhoon_http_request_duration_seconds_bucket" });
        durations.push({ value: stats.sum, labels: { method, route }, metricName: "typhoon_http_request_duration_seconds_sum" });
        durations.push({ value: stats.count, labels: { method, route }, metricName: "typhoon_http_request_duration_seconds_count" });
      }
    }
    return [
      { name: "typhoon_http_requests_total", help: "HTTP requests answered, by method, route and status.", type: "counter", aggregator: "sum", values: requests },
      { name: "typhoon_http_request_duration_seconds", help: "Time from the request's arrival to its response's end.", type: "histogram", aggregator: "sum", values: durations },
      { name: "typhoon_http_requests_in_flight", help: "Requests being served now.", type: "gauge", aggregator: "sum", values: [{ value: this.inFlight, labels: {} }] },
    ];
  }
}

let recorder: RequestMetrics | null = null;
let registryPromise: Promise<Registry> | null = null;

/**
 * The process's request metrics, recording from now on (called when an `Application` with a
 * metrics route is built). Starts the child's answer to the supervisor's gathering too.
 */
export function requestMetrics(): RequestMetrics {
  if (recorder === null) {
    recorder = new RequestMetrics();
    if (cluster.isWorker) answerGathering();
  }
  return recorder;
}

/**
 * The prom-client registry `MetricsHandler` serves: the standard `process_*`/`nodejs_*` metrics
 * and whatever the app registers on it. prom-client is loaded on the first call.
 *
 * @example
 * const registry = await metricsRegistry();
 * const jobs = new Counter({ name: "jobs_total", help: "Jobs done.", registers: [registry] });
 */
export function metricsRegistry(): Promise<Registry> {
  registryPromise ??= import("prom-client").then((prom) => {
    const registry = new prom.Registry();
    prom.collectDefaultMetrics({ register: registry });
    return registry;
  });
  return registryPromise;
}

/** This process's metrics in JSON form; in a child of `start(n)` its gauges carry `task`. */
export async function localMetrics(task: number | null): Promise<MetricJSON[]> {
  const registry = await metricsRegistry();
  const own = [...requestMetrics().toJSON(), ...runtimeMetrics()];
  const fromRegistry = (await registry.getMetricsAsJSON()) as unknown as MetricJSON[];
  // prom-client's default `nodejs_active_*_total` are gauges with a counter's suffix, which
  // `promtool check metrics` rejects; `nodejs_active_handles` and friends say the same.
  const all = [...own, ...fromRegistry.filter((m) => !(m.type === "gauge" && m.name.endsWith("_total")))];
  // Aggregation runs even for one process (one code path): every metric is summed, and a
  // per-process gauge keeps its own series through its `task` label. prom-client's defaults
  // would otherwise drop (`omit`) or pick (`first`) series.
  for (const metric of all) {
    metric.aggregator = "sum";
    if (task !== null && metric.type === "gauge") for (const value of metric.values) value.labels = { ...value.labels, task };
  }
  return all;
}

/** The whole exposition text and its content type, from metrics in JSON form. */
export async function exposition(metrics: object[][]): Promise<{ text: string; contentType: string }> {
  const prom = await import("prom-client");
  const registry = prom.AggregatorRegistry.aggregate(metrics);
  return { text: await registry.metrics(), contentType: registry.contentType };
}

/**
 * The scrape: this process's metrics, or, in a child of `start(n)`, the whole server's as the
 * supervisor gathers them.
 */
export async function scrape(task: number | null): Promise<{ text: string; contentType: string }> {
  if (task === null || !process.connected) return exposition([await localMetrics(null), restartsMetric(0)]);
  const text = await askSupervisor();
  const prom = await import("prom-client");
  return { text, contentType: prom.Registry.PROMETHEUS_CONTENT_TYPE };
}

function runtimeMetrics(): MetricJSON[] {
  const loop = loopMonitor().stats();
  loopMonitor().reset(); // each scrape sees the window since the previous one
  const d = loop.delay;
  const tasks: MetricJSON["values"] = [];
  let queued = 0;
  let completed = 0;
  let failed = 0;
  for (const pool of liveExecutors()) {
    const s = pool.stats();
    queued += s.queued;
    completed += s.completed;
    failed += s.failed;
  }
  tasks.push({ value: completed, labels: { outcome: "completed" } }, { value: failed, labels: { outcome: "failed" } });
  return [
    {
      // A gauge by percentile, not a summary: the sampler keeps no running sum or count.
      name: "typhoon_event_loop_delay_seconds", help: "Event-loop delay since the previous scrape, by percentile (100 is the maximum).", type: "gauge", aggregator: "sum",
      values: [
        { value: d.p50 / 1000, labels: { percentile: "50" } }, { value: d.p90 / 1000, labels: { percentile: "90" } },
        { value: d.p99 / 1000, labels: { percentile: "99" } }, { value: d.max / 1000, labels: { percentile: "100" } },
      ],
    },
    { name: "typhoon_event_loop_utilization", help: "Share of time the event loop was busy since the previous scrape (0..1).", type: "gauge", aggregator: "sum", values: [{ value: loop.utilization, labels: {} }] },
    { name: "typhoon_executor_tasks_total", help: "Thread-pool tasks finished, by outcome.", type: "counter", aggregator: "sum", values: tasks },
    { name: "typhoon_executor_queue_depth", help: "Thread-pool tasks waiting for a thread.", type: "gauge", aggregator: "sum", values: [{ value: queued, labels: {} }] },
  ];
}

// ---- Under start(n): the child's side of the gathering -------------------------------------

let asked = 0;
const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();

function askSupervisor(): Promise<string> {
  const id = ++asked;
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`the supervisor did not answer the metrics request within ${GATHER_TIMEOUT_MS} ms`));
    }, GATHER_TIMEOUT_MS);
    pending.set(id, {
      resolve: (text) => { clearTimeout(timer); resolve(text); },
      reject: (err) => { clearTimeout(timer); reject(err); },
    });
    process.send?.({ [CHILD_MESSAGE]: "metrics?", id });
  });
}

function answerGathering(): void {
  const task = taskId() ?? 0;
  process.on("message", (message: unknown) => {
    if (typeof message !== "object" || message === null) return;
    const m = message as { [CHILD_MESSAGE]?: unknown; id?: unknown; text?: unknown; error?: unknown };
    const kind = m[CHILD_MESSAGE];
    if (kind === "metrics-collect" && typeof m.id === "number") {
      const id = m.id;
      localMetrics(task).then(
        (metrics) => process.send?.({ [CHILD_MESSAGE]: "metrics-json", id, metrics }),
        (err: unknown) => {
          log.error("typhoon: collecting metrics failed", err);
          process.send?.({ [CHILD_MESSAGE]: "metrics-json", id, metrics: [] });
        });
    } else if (kind === "metrics" && typeof m.id === "number") {
      const waiter = pending.get(m.id);
      if (waiter === undefined) return;
      pending.delete(m.id);
      if (typeof m.text === "string") waiter.resolve(m.text);
      else waiter.reject(new Error(typeof m.error === "string" ? m.error : "the supervisor could not gather metrics"));
    }
  });
}
