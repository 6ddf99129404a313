// Module-loading hooks of a debug-mode child (registered by autoreload-child.ts). They run on
// Node's module-hooks thread: each file loaded is passed on to the child's main thread, which
// reports it to the supervisor, whose watcher then watches it. Plain JavaScript, so that it
// loads on that thread whatever loader (tsx or none) the app runs under.

/** @type {import("node:worker_threads").MessagePort | undefined} */
let port;

/** @param {{ port: import("node:worker_threads").MessagePort }} data */
export function initialize(data) {
  port = data.port;
}

/**
 * @param {string} url
 * @param {object} context
 * @param {(url: string, context: object) => Promise<object>} nextLoad
 */
export function load(url, context, nextLoad) {
  // Before the load: a file that fails to compile is watched too, so saving its fix reloads.
  if (url.startsWith("file:")) port?.postMessage(url);
  return nextLoad(url, context);
}
