/**
 * The supervisor's side of a scrape under `start(n)`: a child asks (`metrics?`), the supervisor
 * asks every ready child for its metrics in JSON form (`metrics-collect`), adds its own
 * (`typhoon_process_restarts_total`), merges them with prom-client's `AggregatorRegistry.aggregate`
 * and answers the asking child with the exposition text.
 *
 * Why not prom-client's `AggregatorRegistry.clusterMetrics()`: it can only start in the primary,
 * while the scrape arrives at a child; and it waits for every cluster worker, so a child that is
 * still starting (a restart) would fail the whole scrape after its 5 s timeout. Here only the
 * children that said they are ready are asked, and one that exits mid-gather is not waited for.
 * prom-client is loaded in the supervisor only when a child asks.
 */
import type { Worker } from "node:cluster";
import { log } from "../log.ts";

// The key of every supervisor–child message (handoff.ts's CHILD_MESSAGE), repeated here so this
// module stays out of the supervisor ↔ handoff ↔ server import loop.
const CHILD_MESSAGE = "typhoon";

function messageKind(message: unknown): unknown {
  return typeof message === "object" && message !== null ? (message as Record<string, unknown>)[CHILD_MESSAGE] : undefined;
}

/** How long the supervisor waits for the children's metrics (ms). */
const COLLECT_TIMEOUT_MS = 3_000;

/** What a gathering needs from the supervisor. */
export interface GatherSource {
  /** The workers of ready children. */
  readyWorkers(): Worker[];
  /** Restarts so far. */
  restarts(): number;
}

/** `typhoon_process_restarts_total` in prom-client's JSON form. */
export function restartsMetric(restarts: number): object[] {
  return [{
    name: "typhoon_process_restarts_total", help: "Children of start(n) restarted by the supervisor.",
    type: "counter", aggregator: "sum", values: [{ value: restarts, labels: {} }],
  }];
}

interface Gathering {
  readonly metrics: object[][];
  waiting: Set<Worker>;
  readonly done: () => void;
}

let nextGather = 0;
const gatherings = new Map<number, Gathering>();

/**
 * Handles a metrics message from `worker` (true if it was one): a child's request to gather,
 * or a child's reply to a gathering.
 */
export function onMetricsMessage(source: GatherSource, worker: Worker, message: unknown): boolean {
  const kind = messageKind(message);
  if (kind === "metrics?") {
    void gatherFor(source, worker, (message as { id?: unknown }).id);
    return true;
  }
  if (kind === "metrics-json") {
    const { id, metrics } = message as { id?: unknown; metrics?: unknown };
    const gathering = typeof id === "number" ? gatherings.get(id) : undefined;
    if (gathering !== undefined && gathering.waiting.delete(worker)) {
      if (Array.isArray(metrics)) gathering.metrics.push(metrics as object[]);
      if (gathering.waiting.size === 0) gathering.done();
    }
    return true;
  }
  return false;
}

/** A child is gone: no gathering waits for it. */
export function forgetWorker(worker: Worker): void {
  for (const gathering of gatherings.values()) {
    if (gathering.waiting.delete(worker) && gathering.waiting.size === 0) gathering.done();
  }
}

async function gatherFor(source: GatherSource, asker: Worker, id: unknown): Promise<void> {
  try {
    const metrics = await gather(source);
    const prom = await import("prom-client");
    metrics.push(restartsMetric(source.restarts()));
    const text = await prom.AggregatorRegistry.aggregate(metrics).metrics();
    if (asker.isConnected()) asker.send({ [CHILD_MESSAGE]: "metrics", id, text });
  } catch (err) {
    log.error("typhoon: gathering the children's metrics failed", err);
    if (asker.isConnected()) asker.send({ [CHILD_MESSAGE]: "metrics", id, error: String(err) });
  }
}

function gather(source: GatherSource): Promise<object[][]> {
  const id = ++nextGather;
  const workers = source.readyWorkers().filter((w) => w.isConnected());
  return new Promise((resolve) => {
    const metrics: object[][] = [];
    const finish = (): void => {
      clearTimeout(timer);
      gatherings.delete(id);
      resolve(metrics);
    };
    // A child stuck in CPU work does not hold the scrape forever: what arrived is served.
    const timer = setTimeout(finish, COLLECT_TIMEOUT_MS);
    gatherings.set(id, { metrics, waiting: new Set(workers), done: finish });
    if (workers.length === 0) return finish();
    for (const worker of workers) worker.send({ [CHILD_MESSAGE]: "metrics-collect", id });
  });
}
