// The demo's validated /items resource (scripts/items.ts): create, read, replace, delete, a 400
// listing both bad fields, and its OpenAPI document accepted by @readme/openapi-parser.
import t from "tap";
import { validate, compileErrors } from "@readme/openapi-parser";
import { Application, OpenAPIHandler, url } from "../../core/index.ts";
import { ItemHandler, ItemsHandler } from "../../scripts/items.ts";

const app = new Application([
  ["/items", ItemsHandler],
  url("/items/(?<id>\\d+)", ItemHandler, undefined, "item"),
  ["/openapi.json", OpenAPIHandler, { info: { title: "demo", version: "1" } }],
]);

t.test("create, read, list, replace and delete an item", async (t) => {
  const created = await app.inject({ method: "POST", url: "/items", body: { name: "bolt", qty: 3 } });
  t.equal(created.status, 201);
  const item = created.json() as { id: number; name: string; qty: number };
  t.match(item, { name: "bolt", qty: 3 });
  t.equal(created.headers["location"], `/items/${item.id}`);
  t.same((await app.inject({ url: `/items/${item.id}` })).json(), item);
  t.same((await app.inject({ url: "/items?limit=1" })).json(), [item]);
  t.same((await app.inject({ method: "PUT", url: `/items/${item.id}`, body: { name: "nut", qty: 9 } })).json(), { id: item.id, name: "nut", qty: 9 });
  t.equal((await app.inject({ method: "DELETE", url: `/items/${item.id}` })).status, 204);
  t.equal((await app.inject({ url: `/items/${item.id}` })).status, 404);
});

t.test("bad input is one 400 listing every failure", async (t) => {
  const res = await app.inject({ method: "POST", url: "/items", body: { name: "", qty: "x", extra: 1 } });
  t.equal(res.status, 400);
  const errors = (res.json() as { errors: { in: string; path: string }[] }).errors;
  t.same(errors.map((e) => `${e.in} ${e.path}`).sort(), ["body /extra", "body /name", "body /qty"]);
  t.equal((await app.inject({ url: "/items?limit=0" })).status, 400);
});

t.test("the demo's OpenAPI document is valid", async (t) => {
  const doc = (await app.inject({ url: "/openapi.json" })).json() as Parameters<typeof validate>[0];
  const result = await validate(doc);
  t.ok(result.valid, result.valid ? "valid" : compileErrors(result));
});
