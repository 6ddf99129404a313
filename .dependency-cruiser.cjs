/**
 * typhoon's layers, checked by `make typecheck` (dependency-cruiser).
 *
 * Bottom to top: core/errors.ts + core/log.ts, log-record.ts, log-writer.ts (base) → core/http → core/loop, core/executor →
 * core/server → core/web → core/index.ts, core/testing.ts (the public entry points) → handlers/.
 * A folder imports only the folders below it; no import cycles, type-only imports included.
 * The one import from core/ into handlers/ is core/index.ts re-exporting them (API.md).
 */
const BASE = "^core/(errors|log|log-record|log-writer)\\.ts$";
const layer = (name, from, allowed) => ({
  name,
  severity: "error",
  comment: `${from} may import only ${allowed.join(", ")}`,
  from: { path: from },
  to: { path: "^(core|handlers)/", pathNot: allowed.join("|") },
});

module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", comment: "an import cycle (type-only imports count)", from: {}, to: { circular: true } },
    layer("base-imports-nothing", BASE, [BASE]),
    layer("http-layer", "^core/http/", [BASE, "^core/http/"]),
    layer("loop-layer", "^core/loop/", [BASE, "^core/loop/"]),
    layer("executor-layer", "^core/executor/", [BASE, "^core/executor/"]),
    layer("server-layer", "^core/server/", [BASE, "^core/http/", "^core/loop/", "^core/server/"]),
    layer("web-layer", "^core/web/", [BASE, "^core/http/", "^core/loop/", "^core/executor/", "^core/server/", "^core/web/"]),
    layer("testing-entry", "^core/testing\\.ts$", [BASE, "^core/(http|loop|executor|server|web)/"]),
    layer("public-entry", "^core/index\\.ts$", [BASE, "^core/", "^handlers/index\\.ts$"]),
    layer("handlers-use-core-layers", "^handlers/", [BASE, "^core/(http|loop|executor|server|web)/", "^handlers/"]),
  ],
  options: {
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    exclude: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".mjs", ".js"] },
  },
};
