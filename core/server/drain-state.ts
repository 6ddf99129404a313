/**
 * The draining state of a server: one object per `HTTPServer`, written only by the server side
 * (`stop()`, the signal drain, a rolling reload), read by the request path (`Connection: close`),
 * `HealthHandler` (503) and `isDraining()`, and listened to by long-lived connections
 * (WebSocket handlers close with 1001 when it begins, without polling).
 */

// States that began draining and have not finished: `isDraining()` of the process.
let drainingServers = 0;

/** Whether the server is draining, and who wants to hear when it begins. */
export class DrainState {
  #draining = false;
  #ended = false;
  readonly #listeners = new Set<() => void>();

  /** True from the moment the server begins to drain. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Starts draining (once): every listener is called. */
  begin(): void {
    if (this.#draining) return;
    this.#draining = true;
    drainingServers++;
    for (const listener of [...this.#listeners]) listener();
    this.#listeners.clear();
  }

  /** The server has stopped: it no longer counts for `isDraining()`. */
  end(): void {
    if (!this.#draining || this.#ended) return;
    this.#ended = true;
    drainingServers--;
  }

  /**
   * Calls `listener` once when draining begins (at once if it has). Returns the function that
   * removes it (a WebSocket that closes by itself calls it).
   */
  onDrain(listener: () => void): () => void {
    if (this.#draining) {
      listener();
      return () => {};
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** Whether any server of this process is draining. */
export function anyServerDraining(): boolean {
  return drainingServers > 0;
}
