#!/usr/bin/env node
// Runs the tap suite and ends with the line `N passed, N failed[, N skipped]`, counted from
// tap's own closing summary of the real run (`# { total, pass, fail, skip, todo }`).
// Arguments are passed through to tap (for example a list of spec files).
//
// Coverage: every process and worker thread of the run (the spec processes, the children they
// start with `node --import tsx`, cluster workers, executor threads) writes its raw V8 coverage
// into .tap/v8-coverage through NODE_V8_COVERAGE; scripts/coverage.mjs maps it back to core/ and
// handlers/ and prints the table. A whole-suite run below package.json's "coverage" thresholds
// exits 1 (the counts line stays the last line); a run of chosen spec files only reports.
import { spawn } from "node:child_process";
import { rmSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const COVERAGE_DIR = join(ROOT, ".tap", "v8-coverage");
const specArgs = process.argv.slice(2);
const wholeSuite = !specArgs.some((a) => !a.startsWith("-"));
rmSync(COVERAGE_DIR, { recursive: true, force: true });
mkdirSync(COVERAGE_DIR, { recursive: true });

const args = ["tap", "--reporter=tap", ...specArgs];
const env = { ...process.env, FORCE_COLOR: "0", NODE_V8_COVERAGE: COVERAGE_DIR };
const child = spawn("npx", args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env });

let summary = null;
let tail = "";
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  const text = tail + chunk.toString("utf8");
  const lines = text.split("\n");
  tail = lines.pop() ?? "";
  for (const line of lines) {
    const m = /^# (\{ total: .*\})\s*$/.exec(line);
    if (m) summary = m[1];
  }
});

child.on("close", async (code, signal) => {
  const m = /^# (\{ total: .*\})\s*$/.exec(tail);
  if (m) summary = m[1];
  const counts = { pass: 0, fail: 0, skip: 0, todo: 0 };
  if (summary) {
    for (const key of Object.keys(counts)) {
      const found = new RegExp(`\\b${key}: (\\d+)`).exec(summary);
      if (found) counts[key] = Number(found[1]);
    }
  }
  // A run that died before tap summarised it is a failure, whatever was counted.
  const crashed = summary === null || signal !== null;
  if (crashed) counts.fail = Math.max(counts.fail, 1);
  if (crashed) console.log(`# tap ended without a summary (exit ${code}, signal ${signal})`);

  let coverageOk = true;
  try {
    const { report } = await import("./coverage.mjs");
    const result = await report(COVERAGE_DIR, { onlyLoaded: !wholeSuite });
    if (result.failures.length) {
      coverageOk = !wholeSuite;
      console.log(`# coverage below the thresholds of package.json "coverage": ${result.failures.join(", ")}${wholeSuite ? "" : " (not enforced: only some specs ran)"}`);
    }
  } catch (err) {
    coverageOk = false;
    console.log(`# coverage report failed: ${err instanceof Error ? err.stack : String(err)}`);
  }

  const skipped = counts.skip + counts.todo;
  console.log(`${counts.pass} passed, ${counts.fail} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(code === 0 && !crashed && counts.fail === 0 && coverageOk ? 0 : 1);
});
