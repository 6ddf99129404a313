/**
 * The cluster demo's measuring tools: a closed-loop load generator that counts who answered
 * (instance, pid, the client address the app saw) and every failure, and an active health checker
 * that polls each instance's `/health` and records when its state changes.
 */
import { Agent, request } from "node:http";

/** What one `/whoami` answer said. */
interface WhoAmI { instance: string; pid: number; remoteIp: string; forwardedFor: string | null }

/** The counts of one load run. */
export interface LoadStats {
  requests: number;
  failures: string[];
  byInstance: Map<string, number>;
  byPid: Map<number, number>;
  remoteIps: Set<string>;
  forwardedFor: Set<string>;
  /** Answers per instance after {@link Load.mark} was called (0 when it was not). */
  afterMark: Map<string, number>;
}

function get(url: string, agent: Agent | false, localAddress: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, localAddress, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
    req.on("error", reject);
    req.end();
  });
}

/**
 * `concurrency` clients sending `GET /whoami` back to back through nginx over keep-alive
 * connections from `localAddress`, until {@link Load.stop}.
 */
export class Load {
  readonly #url: string;
  readonly #agent: Agent;
  readonly #localAddress: string;
  readonly #stats: LoadStats = {
    requests: 0, failures: [], byInstance: new Map(), byPid: new Map(), remoteIps: new Set(), forwardedFor: new Set(), afterMark: new Map(),
  };
  #running = true;
  #marked = false;
  readonly #workers: Promise<void>[];

  constructor(baseUrl: string, concurrency: number, localAddress: string) {
    this.#url = `${baseUrl}/whoami`;
    this.#localAddress = localAddress;
    this.#agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    this.#workers = Array.from({ length: concurrency }, () => this.#work());
  }

  /** From now on, also count answers per instance in `afterMark`. */
  mark(): void {
    this.#marked = true;
  }

  /** Stops sending, waits for the requests in flight, and returns the counts. */
  async stop(): Promise<LoadStats> {
    this.#running = false;
    await Promise.all(this.#workers);
    this.#agent.destroy();
    return this.#stats;
  }

  async #work(): Promise<void> {
    const s = this.#stats;
    while (this.#running) {
      s.requests++;
      try {
        const { status, body } = await get(this.#url, this.#agent, this.#localAddress);
        if (status !== 200) {
          s.failures.push(`HTTP ${status}: ${body.slice(0, 80)}`);
          continue;
        }
        const who = JSON.parse(body) as WhoAmI;
        s.byInstance.set(who.instance, (s.byInstance.get(who.instance) ?? 0) + 1);
        s.byPid.set(who.pid, (s.byPid.get(who.pid) ?? 0) + 1);
        s.remoteIps.add(who.remoteIp);
        if (who.forwardedFor !== null) s.forwardedFor.add(who.forwardedFor);
        if (this.#marked) s.afterMark.set(who.instance, (s.afterMark.get(who.instance) ?? 0) + 1);
      } catch (err) {
        s.failures.push(err instanceof Error ? err.message : String(err));
      }
    }
  }
}

/** The states an active check sees: 200, 503 (draining), or no answer. */
type Health = "ok" | "draining" | "down";

/**
 * Polls `GET /health` on each instance directly every `interval` ms and keeps the changes
 * (what nginx open source cannot do by itself: it only notices failures of real requests).
 */
export class HealthWatch {
  readonly #targets: Map<string, string>;
  readonly #started = performance.now();
  readonly #state = new Map<string, Health>();
  readonly #changes = new Map<string, string[]>();
  readonly #timer: NodeJS.Timeout;
  #busy = false;

  constructor(targets: Map<string, string>, interval = 200) {
    this.#targets = targets;
    this.#timer = setInterval(() => void this.#poll(), interval);
  }

  /** Stops polling; one line per instance: its first state and every change with its time. */
  stop(): string[] {
    clearInterval(this.#timer);
    return [...this.#targets.keys()].map((name) => `${name}: ${(this.#changes.get(name) ?? ["not checked"]).join(" → ")}`);
  }

  async #poll(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    await Promise.all([...this.#targets].map(async ([name, url]) => {
      let health: Health;
      try {
        const { status } = await get(`${url}/health`, false, undefined);
        health = status === 200 ? "ok" : status === 503 ? "draining" : "down";
      } catch {
        health = "down";
      }
      if (this.#state.get(name) === health) return;
      this.#state.set(name, health);
      const at = ((performance.now() - this.#started) / 1000).toFixed(1);
      const list = this.#changes.get(name) ?? [];
      list.push(list.length === 0 ? health : `${health} at ${at} s`);
      this.#changes.set(name, list);
    }));
    this.#busy = false;
  }
}
