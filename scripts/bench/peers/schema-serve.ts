/**
 * What the schema benchmark's peers share: the same JSON Schemas (TypeBox) for a validated JSON
 * POST (`{ name, qty }` → 201 with the created item) and for a JSON response serialized through
 * its schema, so typhoon and Fastify do the same validation and serialization work.
 */
import { Type } from "@sinclair/typebox";

/** The body of `POST /items`. */
export const NewItem = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100 }),
  qty: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });

/** The answer of `POST /items` (201). */
export const Item = Type.Object({ id: Type.Integer(), name: Type.String(), qty: Type.Integer() });

/** The answer of `GET /report`, serialized through this schema. */
export const Report = Type.Object({
  id: Type.Integer(),
  title: Type.String(),
  tags: Type.Array(Type.String()),
  items: Type.Array(Item),
});

/** What `GET /report` answers: ten items and a field the schema does not name (never sent). */
export const REPORT = {
  id: 7,
  title: "Weekly stock report",
  tags: ["stock", "weekly", "warehouse"],
  items: Array.from({ length: 10 }, (_, i) => ({ id: i, name: `item ${i}`, qty: i * 3 })),
  internalNote: "not in the schema",
};

/** What `GET /report-plain` answers without a schema: the same bytes as `REPORT` through its schema. */
export const REPORT_PLAIN = { id: REPORT.id, title: REPORT.title, tags: REPORT.tags, items: REPORT.items };

/** The body the load generator posts. */
export const POST_BODY = JSON.stringify({ name: "widget", qty: 3 });
