/**
 * Benchmark peer: raw `node:http` written as its best users write it, the floor every framework
 * is measured against: one `writeHead(status, { ...headers })` with the content type and length,
 * then `end(body)`; a regex for the group route; for the route table, a hand-written list of
 * the same 500 rules as typhoon's, tried in order (the first match wins, as in typhoon).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { HELLO, JSON_BODY, PLAINTEXT, PREFIX, announce, routeTable, scenarioArg } from "./serve.ts";

const scenario = scenarioArg(["hello", "json", "plaintext", "group", "routes", "prefixed"]);
const USER = /^\/users\/(\d+)$/;
const TABLE = scenario === "routes" || scenario === "prefixed"
  ? routeTable(scenario === "prefixed" ? PREFIX : "").map((prefix) => new RegExp(`^${prefix}/(\\d+)$`))
  : [];

function text(res: ServerResponse, body: string): void {
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { "content-length": 0 });
  res.end();
}

function hello(_req: IncomingMessage, res: ServerResponse): void {
  text(res, HELLO);
}

function json(_req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify(JSON_BODY);
  res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function plaintext(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(PLAINTEXT) });
  res.end(PLAINTEXT);
}

function group(req: IncomingMessage, res: ServerResponse): void {
  const m = USER.exec(req.url ?? "/");
  if (m === null) return notFound(res);
  text(res, `user ${m[1]}`);
}

function routes(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? "/";
  for (const rule of TABLE) {
    const m = rule.exec(url);
    if (m !== null) return text(res, `item ${m[1]}`);
  }
  notFound(res);
}

const handlers = { hello, json, plaintext, group, routes, prefixed: routes };
const server = createServer(handlers[scenario]);
server.listen(0, "127.0.0.1", () => announce(server));
