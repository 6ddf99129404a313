/**
 * Schema benchmark peer: Fastify 5 (logger off) with the same schemas on its routes, validated by
 * its Ajv and serialized by its fast-json-stringify, as Fastify users write them.
 */
import Fastify from "fastify";
import { announce } from "./serve.ts";
import { Item, NewItem, REPORT, Report } from "./schema-serve.ts";

let nextId = 1;
const app = Fastify({ logger: false });

app.post("/items", { schema: { body: NewItem, response: { 201: Item } } }, async (req, reply) => {
  reply.code(201);
  return { id: nextId++, ...(req.body as { name: string; qty: number }) };
});
app.get("/report", { schema: { response: { 200: Report } } }, async () => REPORT);

await app.listen({ port: 0, host: "127.0.0.1" });
announce(app.server);
