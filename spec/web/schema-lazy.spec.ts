// An app without schemas never loads Ajv or fast-json-stringify: a child process imports the
// framework, serves a request and reports node's module cache; the same child with one schema
// shows the libraries loaded (so the check can fail).
import t from "tap";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const fixture = fileURLToPath(new URL("../fixtures/schema-lazy-app.ts", import.meta.url));

function run(mode: string): Promise<{ status: number; body: string; loaded: string[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--import", "tsx", fixture, mode], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split("\n").pop()!) as { status: number; body: string; loaded: string[] });
    });
  });
}

t.test("an app without schemas serves a request without loading Ajv or fast-json-stringify", async (t) => {
  const out = await run("without");
  t.equal(out.status, 200);
  t.equal(out.body, '{"got":{"a":1}}');
  t.same(out.loaded, []);
});

t.test("an app with a schema loads them when it is built", async (t) => {
  const out = await run("with");
  t.equal(out.status, 200);
  t.same(out.loaded, ["ajv", "ajv-formats", "fast-json-stringify"]);
});
