/**
 * A minimal headless-Chromium driver over the DevTools protocol (CDP), enough to walk the blog
 * like a person: open a page, click an element, type into it, read the page, take a screenshot.
 * Chromium is Debian's `chromium` package; `ws` speaks the protocol's WebSocket.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";

/** The Chromium binary on PATH (`chromium`, `chromium-browser`), or null. */
export function findChromium(): string | null {
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    if (found.status === 0 && found.stdout.trim() !== "") return found.stdout.trim();
  }
  return null;
}

interface Pending {
  resolve(value: Record<string, unknown>): void;
  reject(err: Error): void;
}

/** One page (tab) of a headless Chromium. */
export class Page {
  readonly #ws: WebSocket;
  readonly #session: string;
  readonly #pending: Map<number, Pending>;
  readonly #listeners = new Set<(method: string) => void>();
  #nextId: () => number;

  constructor(ws: WebSocket, session: string, pending: Map<number, Pending>, nextId: () => number) {
    this.#ws = ws;
    this.#session = session;
    this.#pending = pending;
    this.#nextId = nextId;
  }

  /** Sends a CDP command to this page and resolves to its result. */
  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.#nextId();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ id, method, params, sessionId: this.#session }));
    });
  }

  /** Called by the browser for each event of this page. */
  event(method: string): void {
    for (const listener of this.#listeners) listener(method);
  }

  /** Resolves on the next event named `method` (bounded by `timeoutMs`). */
  next(method: string, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.#listeners.delete(listener); reject(new Error(`no ${method} within ${timeoutMs} ms`)); }, timeoutMs);
      const listener = (m: string): void => {
        if (m !== method) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve();
      };
      this.#listeners.add(listener);
    });
  }

  /** Navigates and waits for the load event. */
  async goto(url: string): Promise<void> {
    const loaded = this.next("Page.loadEventFired");
    await this.send("Page.navigate", { url });
    await loaded;
  }

  /** The value of a JavaScript expression evaluated in the page. */
  async evaluate<T>(expression: string): Promise<T> {
    const reply = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    const exception = reply["exceptionDetails"] as { text?: string } | undefined;
    if (exception !== undefined) throw new Error(`evaluate failed: ${exception.text ?? "exception"} in ${expression}`);
    return (reply["result"] as { value: T }).value;
  }

  /** A real mouse click (pressed and released) in the middle of the element `selector`. */
  async click(selector: string): Promise<void> {
    const box = await this.evaluate<{ x: number; y: number } | null>(
      `(() => { const e = document.querySelector(${JSON.stringify(selector)}); if (!e) return null; e.scrollIntoView({ block: "center" });` +
      ` const r = e.getBoundingClientRect(); return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()`);
    if (box === null) throw new Error(`no element ${selector} on ${await this.evaluate<string>("location.href")}`);
    for (const type of ["mousePressed", "mouseReleased"]) {
      await this.send("Input.dispatchMouseEvent", { type, x: box.x, y: box.y, button: "left", clickCount: 1 });
    }
  }

  /** Clicks the element, then types `text` into it as keyboard input. */
  async type(selector: string, text: string): Promise<void> {
    await this.click(selector);
    await this.send("Input.insertText", { text });
  }

  /** Clicks an element that submits a form or follows a link, and waits for the next page. */
  async clickAndWait(selector: string): Promise<void> {
    const loaded = this.next("Page.loadEventFired");
    await this.click(selector);
    await loaded;
  }

  /** A PNG of the viewport. */
  async screenshot(): Promise<Buffer> {
    const reply = await this.send("Page.captureScreenshot", { format: "png" });
    return Buffer.from(reply["data"] as string, "base64");
  }
}

/** A running headless Chromium with one page. `close()` ends it and removes its profile. */
export interface Browser {
  readonly page: Page;
  close(): Promise<void>;
}

/**
 * Starts headless Chromium (`--no-sandbox --disable-gpu --disable-background-networking
 * --no-first-run`, a throwaway profile) and opens one page of `width` × `height`.
 */
export async function launch(binary: string, width = 1000, height = 720): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "typhoon-chromium-"));
  const child = spawn(binary, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--disable-extensions", "--disable-component-update",
    "--no-default-browser-check", "--mute-audio", "--disable-sync", "--remote-debugging-port=0", `--user-data-dir=${profile}`,
    `--window-size=${width},${height}`, "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  const cleanup = (): void => { rmSync(profile, { recursive: true, force: true }); };
  try {
    const endpoint = await devtoolsEndpoint(child);
    const ws = new WebSocket(endpoint, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
    let id = 0;
    const pending = new Map<number, Pending>();
    const pages = new Map<string, Page>();
    ws.on("message", (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; sessionId?: string };
      if (message.id !== undefined) {
        const waiter = pending.get(message.id);
        pending.delete(message.id);
        if (message.error !== undefined) waiter?.reject(new Error(message.error.message));
        else waiter?.resolve(message.result ?? {});
      } else if (message.method !== undefined && message.sessionId !== undefined) pages.get(message.sessionId)?.event(message.method);
    });
    const browserSend = (method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
      const n = ++id;
      pending.set(n, { resolve, reject });
      ws.send(JSON.stringify({ id: n, method, params }));
    });
    const { targetId } = await browserSend("Target.createTarget", { url: "about:blank" }) as { targetId: string };
    const { sessionId } = await browserSend("Target.attachToTarget", { targetId, flatten: true }) as { sessionId: string };
    const page = new Page(ws, sessionId, pending, () => ++id);
    pages.set(sessionId, page);
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    await page.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
    return {
      page,
      async close(): Promise<void> {
        ws.close();
        const exited = new Promise<void>((resolve) => { if (child.exitCode !== null) resolve(); else child.once("exit", () => resolve()); });
        child.kill("SIGTERM");
        await exited;
        cleanup();
      },
    };
  } catch (err) {
    child.kill("SIGKILL");
    cleanup();
    throw err;
  }
}

// Chromium announces its browser endpoint on stderr: "DevTools listening on ws://...".
function devtoolsEndpoint(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => { reject(new Error(`Chromium did not start within 30 s:\n${text.slice(-2000)}`)); }, 30_000);
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      text += chunk;
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(text);
      if (match !== null) { clearTimeout(timer); resolve(match[1]!); }
    });
    child.once("exit", (code, signal) => { clearTimeout(timer); reject(new Error(`Chromium exited (${code ?? signal}) before listening:\n${text.slice(-2000)}`)); });
    child.once("error", (err) => { clearTimeout(timer); reject(err); });
  });
}
