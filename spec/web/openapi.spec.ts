// app.openapi() and OpenAPIHandler: an OpenAPI 3.1 document from the rule table and the handlers'
// schemas (named groups as {name}, positional as {argN}, irreversible patterns left out), which a
// real OpenAPI validator accepts.
import t from "tap";
import { Type } from "@sinclair/typebox";
import { validate, compileErrors } from "@readme/openapi-parser";
import { Application, OpenAPIHandler, RequestHandler, url, type Validated } from "../../core/index.ts";

const NewItem = Type.Object({ name: Type.String({ minLength: 1 }), qty: Type.Integer({ minimum: 0 }) });
const Item = Type.Object({ id: Type.Integer(), name: Type.String(), qty: Type.Integer() });

class ItemsHandler extends RequestHandler {
  static override schema = {
    get: {
      summary: "List items", tags: ["items"],
      query: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, default: 20 })) }),
      response: { 200: Type.Array(Item) },
    },
    post: { summary: "Create an item", tags: ["items"], body: NewItem, response: { 201: Item } },
  };
  get(this: Validated<typeof ItemsHandler, "get">): void { this.write([]); }
  post(this: Validated<typeof ItemsHandler, "post">): void { this.setStatus(201); this.write({ id: 1, ...this.valid.body }); }
}

class ItemHandler extends RequestHandler {
  static override schema = {
    get: { params: Type.Object({ id: Type.Integer() }), headers: Type.Object({ "x-tenant": Type.Optional(Type.String()) }), response: { 200: Item, "4xx": Type.Object({ error: Type.String() }) } },
    delete: { params: Type.Object({ id: Type.Integer() }) },
  };
  get(): void {}
  delete(): void {}
}

class Plain extends RequestHandler {
  get(): void {}
}

const info = { title: "Items", version: "1.2.3" };
const app = new Application([
  ["/items", ItemsHandler],
  url("/items/(?<id>\\d+)", ItemHandler, undefined, "item"),
  ["/files/(\\w+)/(\\d+)", Plain],
  ["/opt/(a|b)?", Plain], // a quantified group cannot be reversed
  ["/openapi.json", OpenAPIHandler, { info, servers: [{ url: "https://api.example.com" }] }],
]);

t.test("the document validates with @readme/openapi-parser", async (t) => {
  const doc = app.openapi({ info });
  const result = await validate(structuredClone(doc) as Parameters<typeof validate>[0]);
  t.ok(result.valid, result.valid ? "valid" : compileErrors(result));
  t.equal(doc["openapi"], "3.1.0");
});

t.test("paths come from reversible rules: named groups as {name}, positional as {argN}", async (t) => {
  const paths = app.openapi({ info })["paths"] as Record<string, Record<string, unknown>>;
  // "/opt/(a|b)?" (a quantified group) and "/openapi.json" (an unescaped ".") cannot be reversed.
  t.same(Object.keys(paths), ["/items", "/items/{id}", "/files/{arg0}/{arg1}"]);
  t.same(Object.keys(paths["/items"]!), ["get", "post"]);
  t.same(Object.keys(paths["/items/{id}"]!), ["get", "delete"]);
  const files = paths["/files/{arg0}/{arg1}"]!["get"] as { parameters: { name: string; schema: unknown }[] };
  t.same(files.parameters.map((p) => [p.name, p.schema]), [
    ["arg0", { type: "string", pattern: "^(?:\\w+)$" }], ["arg1", { type: "string", pattern: "^(?:\\d+)$" }],
  ]);
});

t.test("operations carry summary, tags, parameters, request body and responses from the schema", async (t) => {
  const paths = app.openapi({ info })["paths"] as Record<string, Record<string, Record<string, unknown>>>;
  const list = paths["/items"]!["get"]!;
  t.equal(list["summary"], "List items");
  t.same(list["tags"], ["items"]);
  t.match(list["parameters"], [{ name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1 } }]);
  t.match(list["responses"], { 200: { content: { "application/json": { schema: { type: "array" } } } }, 400: { description: "Validation failed" } });
  const create = paths["/items"]!["post"]!;
  t.match(create["requestBody"], { required: true, content: { "application/json": { schema: { type: "object", required: ["name", "qty"] } } } });
  t.match(create["responses"], { 201: { description: "Created" } });
  const one = paths["/items/{id}"]!["get"]!;
  t.match(one["parameters"], [{ name: "id", in: "path", required: true, schema: { type: "integer" } }, { name: "x-tenant", in: "header", required: false }]);
  t.match(one["responses"], { 200: {}, "4XX": {} });
  t.same(paths["/files/{arg0}/{arg1}"]!["get"]!["responses"], { 200: { description: "OK" } });
});

t.test("OpenAPIHandler serves the document as JSON, with its servers", async (t) => {
  const res = await app.inject({ url: "/openapi.json" });
  t.equal(res.status, 200);
  t.equal(res.headers["content-type"], "application/json; charset=UTF-8");
  const doc = res.json() as { info: unknown; servers: unknown; paths: Record<string, unknown> };
  t.same(doc.info, info);
  t.same(doc.servers, [{ url: "https://api.example.com" }]);
  t.ok("/items/{id}" in doc.paths);
  t.same((await app.inject({ url: "/openapi.json" })).json(), doc, "the second request gets the same document");
});

t.test("the document is detached from the schemas the validators use", async (t) => {
  const doc = app.openapi({ info }) as { paths: Record<string, { post?: { requestBody: { content: Record<string, { schema: { required: string[] } }> } } }> };
  doc.paths["/items"]!.post!.requestBody.content["application/json"]!.schema.required.length = 0;
  const res = await app.inject({ method: "POST", url: "/items", body: {} });
  t.equal(res.status, 400);
});
