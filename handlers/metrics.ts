/**
 * `MetricsHandler`: the Prometheus scrape endpoint. Serves the text exposition of typhoon's
 * request, event-loop, executor and process metrics, plus any custom metric registered on
 * {@link MetricsHandler.registry}. Under `start(n)` any child's answer covers the whole server.
 * prom-client is loaded on the first scrape; an app without this handler never loads it.
 */
import type { Registry } from "prom-client";
import { RequestHandler } from "../core/web/handler.ts";
import { metricsRegistry, scrape } from "../core/web/metrics.ts";
import { taskId } from "../core/server/process.ts";

/**
 * Answers a Prometheus scrape.
 *
 * @example
 * new Application([["/", MainHandler], ["/metrics", MetricsHandler]]);
 * // custom metrics go on the registry it serves:
 * new Counter({ name: "jobs_total", help: "Jobs done.", registers: [await MetricsHandler.registry()] });
 */
export class MetricsHandler extends RequestHandler {
  /** Marks the class for `Application`: an app that routes to it records request metrics. */
  static readonly recordsMetrics = true;

  /** The prom-client registry this handler serves (loads prom-client). */
  static registry(): Promise<Registry> {
    return metricsRegistry();
  }

  /** Serves the exposition. */
  async get(): Promise<void> {
    const { text, contentType } = await scrape(taskId());
    this.setHeader("Content-Type", contentType);
    this.setHeader("Cache-Control", "no-store");
    this.finish(text);
  }

  // Metrics change between scrapes; an ETag would only cost a hash.
  override computeEtag(): string | null {
    return null;
  }
}
