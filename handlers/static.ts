/**
 * `StaticFileHandler`: lives in the web layer (`core/web/static.ts`), as Tornado keeps it in
 * `web.py`, because the application serves `staticPath` and `staticUrl()` with it; it is
 * re-exported here with the other built-in handlers.
 */
export { CACHE_MAX_AGE, StaticFileHandler, byteRange } from "../core/web/static.ts";
export type { StaticFileOptions } from "../core/web/static.ts";
