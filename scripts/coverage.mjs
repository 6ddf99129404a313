#!/usr/bin/env node
// Coverage of core/ and handlers/ from the raw V8 coverage that Node writes for every process and
// worker thread when NODE_V8_COVERAGE is set (the test processes, the `node --import tsx` children
// the specs start, cluster workers, executor threads).
//
// Why not tap's or c8's report: both merge the raw V8 data of every process by URL before mapping
// it back to the .ts source, which is only valid when every process ran the same generated code
// and when the source map can be trusted range by range. Here the specs run under one transpiler
// and their children under tsx, whose output is whitespace-minified: tap's merge dropped every .ts
// file, and c8 alone on tsx output counted an uncalled function's lines as covered. This script
// maps position by position instead: every mapping segment of the source map (a point of generated
// code that comes from a point of the .ts file) gets the count of the innermost V8 range holding
// it, in each process on its own; the counts are then added up per point of the original file.
//
// What counts is read from the file's syntax tree (TypeScript's parser), so it does not depend on
// which ranges V8 chose to report (V8 leaves out a block that ran exactly as often as its parent):
//   - a line is executable when generated code comes from it, covered when any of its points ran;
//   - a function (declaration, method, accessor, constructor, arrow) is covered when the first
//     point of its body ran;
//   - branches are both sides of each if (an if without else has an implicit else, taken when the
//     condition ran more often than the then-side), each side of ?:, each case and default, and
//     each operand of &&, || and ?? (and of &&=, ||=, ??=);
//   - a file no process loaded counts with all of its lines, functions and branches uncovered.
//
// Usage: node scripts/coverage.mjs <dir of coverage-*.json> [--check]
// With --check the exit code is 1 when a total falls below package.json's "coverage" thresholds.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const B64 = new Map([..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"].map((c, i) => [c, i]));

/** The project's coverage settings: folders measured and the minimum totals, in percent. */
export function settings() {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const c = pkg.coverage ?? {};
  return { include: c.include ?? ["core", "handlers"], lines: c.lines ?? 0, branches: c.branches ?? 0, functions: c.functions ?? 0 };
}

/** Decodes a source map's `mappings` into [generatedLine, generatedColumn, sourceIndex, line, column] (0-based). */
function decodeMappings(mappings) {
  const out = [];
  let genLine = 0, src = 0, oLine = 0, oCol = 0;
  for (const lineText of mappings.split(";")) {
    let genCol = 0;
    if (lineText) {
      for (const seg of lineText.split(",")) {
        if (!seg) continue;
        const values = [];
        let value = 0, shift = 0;
        for (const ch of seg) {
          const digit = B64.get(ch);
          if (digit === undefined) throw new Error(`bad source map character ${ch}`);
          value += (digit & 31) << shift;
          if (digit & 32) { shift += 5; continue; }
          values.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0; shift = 0;
        }
        genCol += values[0];
        if (values.length >= 4) {
          src += values[1]; oLine += values[2]; oCol += values[3];
          out.push([genLine, genCol, src, oLine, oCol]);
        }
      }
    }
    genLine++;
  }
  return out;
}

/** The points of a plain .js/.mjs file, which runs as written: the start of every word outside comments. */
function identityPoints(text) {
  const points = [];
  let offset = 0;
  let inBlock = false;
  text.split("\n").forEach((line, n) => {
    const re = /\S+/g;
    let m;
    while ((m = re.exec(line))) {
      const word = m[0];
      if (inBlock) { if (word.includes("*/")) inBlock = false; continue; }
      if (word.startsWith("//")) break;
      if (word.startsWith("/*")) { if (!word.includes("*/")) inBlock = true; continue; }
      points.push({ g: offset + m.index, line: n, col: m.index });
    }
    offset += line.length + 1;
  });
  return points;
}

/** The points of one script in one process: generated offset → original line and column, sorted by offset. */
function pointsOf(url, file, mapEntry) {
  if (!mapEntry?.data?.mappings) return identityPoints(readFileSync(file, "utf8"));
  const { data, lineLengths } = mapEntry;
  const starts = [];
  let offset = 0;
  for (const len of lineLengths) { starts.push(offset); offset += len + 1; }
  const sources = (data.sources ?? []).map((s) => {
    try { return fileURLToPath(new URL(s, url)); } catch { return s; }
  });
  const points = [];
  for (const [gl, gc, si, ol, oc] of decodeMappings(data.mappings)) {
    if (sources.length > 1 && sources[si] !== file) continue;
    if (starts[gl] === undefined) continue;
    points.push({ g: starts[gl] + gc, line: ol, col: oc });
  }
  points.sort((a, b) => a.g - b.g);
  return points;
}

/** Gives each point the count of the innermost V8 range that holds it (ranges nest, so a stack sweep does). */
function countPoints(points, functions) {
  const ranges = [];
  functions.forEach((fn, fi) => fn.ranges.forEach((r, ri) => ranges.push({ s: r.startOffset, e: r.endOffset, c: r.count, order: fi * 1e6 + ri })));
  ranges.sort((a, b) => a.s - b.s || b.e - a.e || a.order - b.order);
  const stack = [];
  let ri = 0;
  for (const p of points) {
    while (ri < ranges.length && ranges[ri].s <= p.g) {
      const r = ranges[ri++];
      while (stack.length && stack[stack.length - 1].e <= r.s) stack.pop();
      stack.push(r);
    }
    while (stack.length && stack[stack.length - 1].e <= p.g) stack.pop();
    p.count = stack.length ? stack[stack.length - 1].c : undefined;
  }
}

/** Is this absolute path one of the measured files? */
function measured(file, include) {
  if (!/\.(ts|mts|mjs|js)$/.test(file) || file.endsWith(".d.ts")) return false;
  const rel = relative(ROOT, file);
  return !rel.startsWith("..") && include.some((dir) => rel === dir || rel.startsWith(dir + sep));
}

/**
 * Adds one process's coverage into `merged`: file → flavour → (original "line:col" → summed count).
 * A flavour is one generated code of the file (one transpiler's output, told apart by its source
 * map): processes of the same flavour ran the same code and add up point by point; flavours are
 * compared node by node of the syntax tree (see `analyse`).
 */
function addProcess(merged, json, include) {
  const maps = json["source-map-cache"] ?? {};
  for (const script of json.result ?? []) {
    if (!script.url.startsWith("file:")) continue;
    const url = script.url.split("?")[0];
    let file;
    try { file = fileURLToPath(url); } catch { continue; }
    if (!measured(file, include)) continue;
    const mapEntry = maps[script.url] ?? maps[url];
    const points = pointsOf(url, file, mapEntry);
    if (points.length === 0) continue;
    countPoints(points, script.functions);
    let flavours = merged.get(file);
    if (!flavours) merged.set(file, (flavours = new Map()));
    const flavour = mapEntry?.data?.mappings ? createHash("sha1").update(mapEntry.data.mappings).digest("hex") : "as written";
    let counts = flavours.get(flavour);
    if (!counts) flavours.set(flavour, (counts = new Map()));
    // Within one process, a point reached from several places of generated code (a helper esbuild
    // adds, such as keepNames' __name call) keeps the count of its first place, the code itself.
    const own = new Map();
    for (const p of points) {
      const key = `${p.line}:${p.col}`;
      if (p.count !== undefined && !own.has(key)) own.set(key, p.count);
    }
    for (const [key, count] of own) counts.set(key, (counts.get(key) ?? 0) + count);
  }
}

/** Every measured file on disk (so a file no spec loads counts as uncovered, not as absent). */
function listFiles(include) {
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (measured(path, include)) files.push(path);
    }
  };
  for (const dir of include) walk(join(ROOT, dir));
  return files.sort();
}

/**
 * The coverage of one file from its merged point counts and its syntax tree:
 *   - lines: those generated code comes from (for a file no process loaded, a TypeScript
 *     transpile's source map says which), covered when any of their points ran;
 *   - functions: every function, method, accessor, constructor and arrow with a body, covered when
 *     the first point of its body ran;
 *   - branches: both sides of each if (an if without else has an implicit one, taken when the
 *     condition ran more often than the then-side), each side of ?:, each case/default clause, and
 *     each operand of &&, ||, ?? (and their assignments), covered when their first point ran.
 */
function analyse(ts, file, flavours) {
  const text = readFileSync(file, "utf8");
  const loaded = flavours !== undefined;
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  // The executable lines, the same whichever transpiler ran the file: those TypeScript's own
  // emit maps back to (an esbuild helper mapped to line 1 or an export list mapped to a closing
  // brace is not a line of code).
  const out = ts.transpileModule(text, { fileName: file, compilerOptions: { sourceMap: true, module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  // TypeScript also maps the comments it keeps: a line counts only if a node of the syntax tree
  // starts on it.
  const codeLines = new Set();
  const mark = (node) => { codeLines.add(source.getLineAndCharacterOfPosition(node.getStart(source)).line); ts.forEachChild(node, mark); };
  ts.forEachChild(source, mark);
  const mapped = decodeMappings(JSON.parse(out.sourceMapText ?? "{}").mappings ?? "").filter(([, , , line]) => codeLines.has(line));
  const executable = new Set(mapped.map(([, , , line]) => line));
  // A file no process loaded: TypeScript's points, none of them run.
  if (!loaded) flavours = new Map([["not loaded", new Map(mapped.map(([, , , line, col]) => [`${line}:${col}`, 0]))]]);
  // Each flavour's points as sorted source positions, to find the first point inside a node.
  const sorted = [...flavours.values()].map((counts) => [...counts].map(([key, count]) => {
    const [line, col] = key.split(":").map(Number);
    let pos;
    try { pos = source.getPositionOfLineAndCharacter(line, col); } catch { pos = -1; }
    return { pos, line, count };
  }).filter((p) => p.pos >= 0).sort((a, b) => a.pos - b.pos));
  // The first point inside [start, end) in each flavour that has one: [] when no code comes from there.
  const firstIn = (start, end) => sorted.map((points) => {
    let lo = 0, hi = points.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (points[mid].pos < start) lo = mid + 1; else hi = mid; }
    const p = points[lo];
    return p && p.pos < end ? p : undefined;
  }).filter((p) => p !== undefined);
  const at = (node) => firstIn(node.getStart(source), node.getEnd());
  const firstOne = (i, node) => {
    const points = sorted[i];
    const start = node.getStart(source);
    let lo = 0, hi = points.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (points[mid].pos < start) lo = mid + 1; else hi = mid; }
    const p = points[lo];
    return p && p.pos < node.getEnd() ? p : undefined;
  };
  const lineOf = (node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const functions = [];
  const branches = [];
  const ran = (found) => found.some((p) => p.count > 0);
  const side = (node) => { const found = at(node); if (found.length) branches.push({ line: lineOf(node), hit: ran(found) }); };
  const logical = new Set([ts.SyntaxKind.AmpersandAmpersandToken, ts.SyntaxKind.BarBarToken, ts.SyntaxKind.QuestionQuestionToken,
    ts.SyntaxKind.AmpersandAmpersandEqualsToken, ts.SyntaxKind.BarBarEqualsToken, ts.SyntaxKind.QuestionQuestionEqualsToken]);
  const visit = (node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const body = node.body;
      let found = ts.isBlock(body) ? firstIn(body.getStart(source) + 1, body.getEnd()) : at(body);
      if (!found.length) found = at(node);
      if (found.length) functions.push({ line: lineOf(node), hit: ran(found) });
    } else if (ts.isIfStatement(node)) {
      side(node.thenStatement);
      if (node.elseStatement) side(node.elseStatement);
      else {
        // Per flavour: the condition's point and the then-side's point come from the same code.
        const taken = sorted.map((_, i) => [firstOne(i, node.expression), firstOne(i, node.thenStatement)]).filter(([c, t]) => c && t);
        if (taken.length) branches.push({ line: lineOf(node), hit: taken.some(([c, t]) => c.count > t.count) });
      }
    } else if (ts.isConditionalExpression(node)) {
      side(node.whenTrue);
      side(node.whenFalse);
    } else if (ts.isCaseClause(node) || ts.isDefaultClause(node)) {
      side(node);
    } else if (ts.isBinaryExpression(node) && logical.has(node.operatorToken.kind)) {
      side(node.left);
      side(node.right);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  const lines = new Map([...executable].map((line) => [line, false]));
  for (const points of sorted) for (const p of points) if (p.count > 0 && lines.has(p.line)) lines.set(p.line, true);
  const uncoveredLines = [...lines].filter(([, hit]) => !hit).map(([line]) => line + 1).sort((a, b) => a - b);
  const tally = (list) => ({ total: list.length, hit: list.filter((x) => x.hit).length });
  return {
    lines: { total: lines.size, hit: lines.size - uncoveredLines.length },
    functions: tally(functions),
    branches: tally(branches),
    uncoveredLines,
    uncoveredBranches: branches.filter((b) => !b.hit).map((b) => b.line),
    uncoveredFunctions: functions.filter((f) => !f.hit).map((f) => f.line),
    loaded,
  };
}

/** "3-5,9" from [3,4,5,9]. */
function ranges(lines) {
  const parts = [];
  for (let i = 0; i < lines.length; i++) {
    let j = i;
    while (j + 1 < lines.length && lines[j + 1] === lines[j] + 1) j++;
    parts.push(i === j ? `${lines[i]}` : `${lines[i]}-${lines[j]}`);
    i = j;
  }
  return parts.join(",");
}

const pct = ({ total, hit }) => (total === 0 ? 100 : (100 * hit) / total);
const fmt = (x) => x.toFixed(2).padStart(6);

/**
 * Reads every coverage file of `dir`, prints the table (per file, per folder, total) and returns
 * the totals and whether they meet the thresholds.
 */
export async function report(dir, { print = console.log, include, onlyLoaded = false } = {}) {
  const conf = { ...settings(), ...(include ? { include } : {}) };
  const ts = (await import("typescript")).default;
  const merged = new Map();
  let processes = 0;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".json")) continue;
    let json;
    try { json = JSON.parse(readFileSync(join(dir, name), "utf8")); } catch { continue; }
    processes++;
    addProcess(merged, json, conf.include);
  }
  const rows = [];
  for (const file of listFiles(conf.include)) {
    if (onlyLoaded && !merged.has(file)) continue;
    rows.push({ name: relative(ROOT, file), ...analyse(ts, file, merged.get(file)) });
  }
  const sum = (list, k) => list.reduce((a, r) => ({ total: a.total + r[k].total, hit: a.hit + r[k].hit }), { total: 0, hit: 0 });
  const total = { lines: sum(rows, "lines"), branches: sum(rows, "branches"), functions: sum(rows, "functions") };
  const width = Math.max(24, ...rows.map((r) => r.name.length + 2));
  const line = (label, f, extra = "") => print(`${label.padEnd(width)} | ${fmt(pct(f.lines))} | ${fmt(pct(f.branches))} | ${fmt(pct(f.functions))} | ${extra}`);
  print(`# coverage of ${conf.include.join("/, ")}/${onlyLoaded ? " (files this run loaded)" : ""} from ${processes} processes and threads (V8, mapped point by point)`);
  print(`${"File".padEnd(width)} |  Lines | Branch |  Funcs | Uncovered lines`);
  const folders = [...new Set(rows.map((r) => dirname(r.name)))].sort();
  for (const folder of folders) {
    const inFolder = rows.filter((r) => dirname(r.name) === folder);
    line(`${folder}/`, { lines: sum(inFolder, "lines"), branches: sum(inFolder, "branches"), functions: sum(inFolder, "functions") });
    for (const r of inFolder) {
      const note = r.lines.total === 0 ? "types only" : r.loaded ? ranges(r.uncoveredLines) : "never loaded by any process";
      line(`  ${r.name.slice(folder.length + 1)}`, r, note);
    }
  }
  line("All files", total);
  // COVERAGE_DETAIL=part-of-a-path lists the lines of the uncovered branches and functions.
  const detail = process.env.COVERAGE_DETAIL;
  if (detail) {
    for (const r of rows.filter((row) => row.name.includes(detail))) {
      print(`# ${r.name}: branches not taken at lines ${r.uncoveredBranches.join(",") || "-"}; functions never called at lines ${r.uncoveredFunctions.join(",") || "-"}`);
    }
  }
  const totals = { lines: pct(total.lines), branches: pct(total.branches), functions: pct(total.functions) };
  const failures = ["lines", "branches", "functions"].filter((k) => totals[k] < conf[k]).map((k) => `${k} ${totals[k].toFixed(2)}% < ${conf[k]}%`);
  return { totals, counts: total, failures, processes, rows };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) { console.error("usage: node scripts/coverage.mjs <dir of coverage-*.json> [--check]"); process.exit(2); }
  const only = process.env.COVERAGE_INCLUDE;
  const result = await report(resolve(dir), only ? { include: only.split(",") } : {});
  if (result.failures.length) console.log(`# coverage below the thresholds of package.json: ${result.failures.join(", ")}`);
  if (process.argv.includes("--check") && result.failures.length) process.exit(1);
}
