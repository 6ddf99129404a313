// The entry of an executor thread when TypeScript is involved: Node 20 cannot start a worker
// from a .ts file, so this registers tsx's loader in the thread (not inherited from the parent,
// whose loader may be tap's or none) and then imports the thread side, which imports the tasks.
// With compiled .js for both, the pool starts worker.js directly and this file is not used.
import { workerData } from "node:worker_threads";

const isTypeScript = (href) => /\.[cm]?ts$/.test(new URL(href).pathname);
if (isTypeScript(workerData.workerModule) || isTypeScript(workerData.taskModule)) {
  const { register } = await import("tsx/esm/api");
  register();
}
await import(workerData.workerModule);
