/**
 * `HealthHandler`: a load balancer's health check. 200 while the server serves, 503 (with
 * `Connection: close`) once it drains, so the balancer stops sending new requests before the
 * process exits.
 */
import { RequestHandler } from "../core/web/handler.ts";

/**
 * Answers `{"status":"ok"}` (200), or `{"status":"draining"}` (503) while the server stops.
 *
 * @example
 * new Application([["/health", HealthHandler]]);
 */
export class HealthHandler extends RequestHandler {
  /** Answers the check. */
  get(): void {
    this.setHeader("Cache-Control", "no-store");
    if (this.serverDraining) {
      this.setStatus(503);
      this.finish({ status: "draining" });
      return;
    }
    this.finish({ status: "ok" });
  }

  // A health check must not be answered from a cache of its last state.
  override computeEtag(): string | null {
    return null;
  }
}
