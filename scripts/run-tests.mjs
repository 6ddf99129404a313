#!/usr/bin/env node
// Runs the tap suite and ends with the line `N passed, N failed[, N skipped]`, counted from
// tap's own closing summary of the real run (`# { total, pass, fail, skip, todo }`).
// Arguments are passed through to tap (for example a list of spec files).
import { spawn } from "node:child_process";

const args = ["tap", "--reporter=tap", ...process.argv.slice(2)];
const child = spawn("npx", args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, FORCE_COLOR: "0" } });

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

child.on("close", (code, signal) => {
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
  const skipped = counts.skip + counts.todo;
  console.log(`${counts.pass} passed, ${counts.fail} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(code === 0 && !crashed && counts.fail === 0 ? 0 : 1);
});
