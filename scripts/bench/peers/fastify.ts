/**
 * Benchmark peer: Fastify 5 with its defaults (logger off), the fast framework typhoon is held
 * against. Routes use Fastify's idiomatic `:id` parameters (its fastest form, with no digit
 * check), so the comparison never favours typhoon.
 */
import Fastify from "fastify";
import { HELLO, JSON_BODY, PLAINTEXT, PREFIX, announce, routeTable, scenarioArg } from "./serve.ts";

const scenario = scenarioArg(["hello", "json", "plaintext", "group", "routes", "prefixed"]);
const app = Fastify({ logger: false });

if (scenario === "hello") app.get("/", async () => HELLO);
if (scenario === "json") app.get("/json", async () => JSON_BODY);
if (scenario === "plaintext") app.get("/plaintext", (_req, reply) => { reply.type("text/plain").send(PLAINTEXT); });
if (scenario === "group") app.get("/users/:id", async (req) => `user ${(req.params as { id: string }).id}`);
if (scenario === "routes" || scenario === "prefixed") {
  for (const prefix of routeTable(scenario === "prefixed" ? PREFIX : "")) app.get(`${prefix}/:id`, async (req) => `item ${(req.params as { id: string }).id}`);
}

await app.listen({ port: 0, host: "127.0.0.1" });
announce(app.server);
