/**
 * Benchmark peer: raw `node:http`, the floor every framework is measured against. Each scenario
 * does by hand the least a correct server must (status, content type, length, a regex for the
 * group route).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { HELLO, JSON_BODY, announce, scenarioArg } from "./serve.ts";

const scenario = scenarioArg(["hello", "json", "group"]);
const USER = /^\/users\/(\d+)$/;

function hello(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(HELLO) });
  res.end(HELLO);
}

function json(_req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify(JSON_BODY);
  res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function group(req: IncomingMessage, res: ServerResponse): void {
  const m = USER.exec(req.url ?? "/");
  if (m === null) {
    res.writeHead(404, { "content-length": 0 });
    res.end();
    return;
  }
  const body = `user ${m[1]}`;
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

const server = createServer(scenario === "hello" ? hello : scenario === "json" ? json : group);
server.listen(0, "127.0.0.1", () => announce(server));
