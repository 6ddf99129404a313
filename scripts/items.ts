/**
 * The demo's validated JSON resource: `/items` (list, create) and `/items/(?<id>\d+)` (read,
 * replace, delete), their input validated and their output serialized from TypeBox schemas, the
 * same schemas that describe them in `/openapi.json`. Items live in this process's memory (with
 * `start(n)` each process has its own).
 *
 *   curl -s localhost:8888/items -H 'content-type: application/json' -d '{"name":"bolt","qty":3}'
 *   curl -s localhost:8888/items/1
 *   curl -s localhost:8888/items -d '{"name":"","qty":"x"}' -H 'content-type: application/json'   # 400 listing both
 */
import { Type } from "@sinclair/typebox";
import { HTTPError, RequestHandler, type Validated } from "../core/index.ts";

const NewItem = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100 }),
  qty: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });
const Item = Type.Object({ id: Type.Integer(), name: Type.String(), qty: Type.Integer() });
const Id = Type.Object({ id: Type.Integer({ minimum: 1 }) });
const NotFound = Type.Object({ status: Type.Integer(), reason: Type.String() });

interface StoredItem {
  id: number;
  name: string;
  qty: number;
}

const items = new Map<number, StoredItem>();
let nextId = 1;

/** `GET /items?limit=N`, `POST /items`. */
export class ItemsHandler extends RequestHandler {
  static override schema = {
    get: {
      summary: "List items", tags: ["items"],
      query: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }) }),
      response: { 200: Type.Array(Item) },
    },
    post: { summary: "Create an item", tags: ["items"], body: NewItem, response: { 201: Item } },
  };

  get(this: Validated<typeof ItemsHandler, "get">): void {
    this.write([...items.values()].slice(0, this.valid.query.limit));
  }

  post(this: Validated<typeof ItemsHandler, "post">): void {
    const item = { id: nextId++, ...this.valid.body };
    items.set(item.id, item);
    this.setStatus(201);
    this.setHeader("Location", this.reverseUrl("item", item.id));
    this.write(item);
  }
}

/** `GET`, `PUT`, `DELETE /items/(?<id>\d+)`. */
export class ItemHandler extends RequestHandler {
  static override schema = {
    get: { summary: "Read an item", tags: ["items"], params: Id, response: { 200: Item, 404: NotFound } },
    put: { summary: "Replace an item", tags: ["items"], params: Id, body: NewItem, response: { 200: Item, 404: NotFound } },
    delete: { summary: "Delete an item", tags: ["items"], params: Id, response: { 404: NotFound } },
  };

  get(this: Validated<typeof ItemHandler, "get">): void {
    this.write(this.#find(this.valid.params.id));
  }

  put(this: Validated<typeof ItemHandler, "put">): void {
    const item = { ...this.#find(this.valid.params.id), ...this.valid.body };
    items.set(item.id, item);
    this.write(item);
  }

  delete(this: Validated<typeof ItemHandler, "delete">): void {
    items.delete(this.#find(this.valid.params.id).id);
    this.setStatus(204);
  }

  #find(id: number): StoredItem {
    const item = items.get(id);
    if (item === undefined) throw new HTTPError(404, `no item ${id}`);
    return item;
  }
}
