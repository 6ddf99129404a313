/**
 * Loaded with `--import` into every child of a debug-mode supervisor, before the app: registers
 * the module-loading hooks of `autoreload-hooks.mjs` and reports the files they see loaded to
 * the supervisor, which watches them (`autoreload.ts`). Nothing here runs without `debug`.
 */
import { register } from "node:module";
import { pathToFileURL } from "node:url";
import { MessageChannel } from "node:worker_threads";

const { port1, port2 } = new MessageChannel();
register(new URL("./autoreload-hooks.mjs", import.meta.url), { data: { port: port2 }, transferList: [port2] });
// Imported after the hooks are in place, so typhoon's own files are reported too.
const { CHILD_MESSAGE } = await import("./handoff.ts");
const { MODULES_MESSAGE } = await import("./autoreload.ts");

/** Loaded files not yet reported: sent in batches, a startup loads hundreds. */
let batch: string[] = [];
port1.on("message", (url: unknown) => {
  if (typeof url !== "string") return;
  if (batch.length === 0) setTimeout(report, 50).unref();
  batch.push(url);
});
// The channel must not keep a child alive that has nothing else to do.
port1.unref();
// A child that fails to start (a syntax error) still reports what it loaded, the broken file included.
process.on("exit", report);
// The hooks thread's message about a file that failed to compile can lose the race with the exit
// (seen on Node 24): the files the error names are reported too, so saving the fix reloads.
process.on("uncaughtExceptionMonitor", (err: unknown) => {
  const text = err instanceof Error ? `${err.message}\n${err.stack ?? ""}` : String(err);
  for (const m of text.matchAll(/(?:file:\/\/)?(\/[^\s:()'"]+\.(?:[cm]?[jt]sx?))/g)) {
    const path = m[1];
    if (path !== undefined && !path.includes("/node_modules/")) batch.push(pathToFileURL(path).href);
  }
});

function report(): void {
  if (batch.length > 0 && process.connected) process.send?.({ [CHILD_MESSAGE]: MODULES_MESSAGE, urls: batch });
  batch = [];
}
