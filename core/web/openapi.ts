/**
 * The OpenAPI 3.1 document of an application, built from its rule table and its handlers'
 * `static schema`: every rule whose pattern can be reversed becomes a path (named groups as
 * `{name}` parameters, positional ones as `{arg0}`, `{arg1}`, ...), every method the handler
 * implements an operation with its parameters, request body and responses.
 * OpenAPI 3.1 schemas are JSON Schema 2020-12, so handler schemas are used as they are.
 */
import { reasonPhrase } from "../errors.ts";
import { routeTemplate } from "./router.ts";
import type { HandlerSchema, JSONSchema, MethodSchema } from "./schema-types.ts";

/** The `info` object of an OpenAPI document (title and version required). */
export interface OpenAPIInfo {
  readonly title: string;
  readonly version: string;
  readonly description?: string;
  readonly [key: string]: unknown;
}

/** Options of `app.openapi()` and `OpenAPIHandler`. */
export interface OpenAPIOptions {
  readonly info: OpenAPIInfo;
  /** Where the API is served, e.g. `[{ url: "https://api.example.com" }]`. */
  readonly servers?: readonly { readonly url: string; readonly description?: string }[];
}

/** An OpenAPI document: a plain JSON object. */
export type OpenAPIDocument = Record<string, unknown>;

/** What the document needs of a rule (structural: the app passes its routes). */
export interface OpenAPIRoute {
  readonly source: string;
  readonly groupNames: readonly string[] | null;
  readonly groupCount: number;
  readonly handler: {
    readonly schema?: HandlerSchema | undefined;
    readonly supportedMethods: readonly string[];
    readonly prototype: object;
  };
}

type Obj = Record<string, unknown>;

/**
 * Builds the document. Rules are taken in order; a path already described by an earlier rule
 * keeps that rule's operations (the first match wins, as in routing). The result is plain JSON,
 * detached from the handlers' schemas.
 */
export function buildOpenAPI(routes: Iterable<OpenAPIRoute>, options: OpenAPIOptions): OpenAPIDocument {
  const paths: Obj = {};
  for (const route of routes) {
    const template = routeTemplate(route.source);
    // Nested or non-capturing groups would shift the parameters (reverseUrl refuses them too).
    if (template === null || template.groups.length !== route.groupCount) continue;
    const names = template.groups.map((_, i) => route.groupNames?.[i] ?? `arg${i}`);
    let path = template.literals[0]!;
    names.forEach((name, i) => { path += `{${name}}${template.literals[i + 1]!}`; });
    if (path in paths) continue;
    const item: Obj = {};
    for (const method of implementedMethods(route.handler)) {
      item[method] = operation(route, method, names, template.groups);
    }
    paths[path] = item;
  }
  const doc: Obj = { openapi: "3.1.0", info: options.info };
  if (options.servers !== undefined) doc["servers"] = options.servers;
  doc["paths"] = paths;
  // A JSON copy: TypeBox's symbol keys go, and nothing a reader does to the document reaches the
  // schemas the validators were compiled from.
  return JSON.parse(JSON.stringify(doc)) as OpenAPIDocument;
}

function implementedMethods(handler: OpenAPIRoute["handler"]): string[] {
  const proto = handler.prototype as Record<string, unknown>;
  // HEAD and OPTIONS are answered for every GET (and every handler): listed only when written.
  return handler.supportedMethods.map((m) => m.toLowerCase()).filter((m) => typeof proto[m] === "function");
}

function operation(route: OpenAPIRoute, method: string, names: readonly string[], groups: readonly string[]): Obj {
  const schema: MethodSchema = route.handler.schema?.[method as keyof HandlerSchema] ?? {};
  const op: Obj = {};
  if (schema.summary !== undefined) op["summary"] = schema.summary;
  if (schema.description !== undefined) op["description"] = schema.description;
  if (schema.tags !== undefined) op["tags"] = schema.tags;
  const parameters: Obj[] = names.map((name, i) => ({
    name, in: "path", required: true,
    schema: pathParamSchema(schema.params, route.groupNames !== null ? name : i, groups[i]!),
  }));
  parameters.push(...objectParameters(schema.query, "query"), ...objectParameters(schema.headers, "header"));
  if (parameters.length > 0) op["parameters"] = parameters;
  if (schema.body !== undefined) op["requestBody"] = { required: true, content: { "application/json": { schema: schema.body } } };
  const responses: Obj = {};
  for (const [status, body] of Object.entries(schema.response ?? {})) {
    const key = status === "default" ? status : status.toUpperCase();
    const description = /^\d+$/.test(status) ? reasonPhrase(Number(status)) : "Response";
    responses[key] = { description, content: { "application/json": { schema: body } } };
  }
  const validated = schema.params !== undefined || schema.query !== undefined || schema.headers !== undefined || schema.body !== undefined;
  if (validated && !("400" in responses)) responses["400"] = { description: "Validation failed", content: { "application/json": { schema: VALIDATION_PAGE } } };
  if (Object.keys(responses).every((k) => !k.startsWith("2"))) responses["200"] = { description: "OK" };
  op["responses"] = responses;
  return op;
}

// The group's schema from the params schema, else a string matching the group's own pattern.
function pathParamSchema(params: JSONSchema | undefined, key: string | number, group: string): JSONSchema {
  if (typeof params === "object") {
    const fromSchema = typeof key === "string" ? propertiesOf(params)?.[key] : itemsOf(params)?.[key];
    if (fromSchema !== undefined) return fromSchema as JSONSchema;
  }
  return { type: "string", pattern: `^(?:${group.replace(/^\?<[^>]+>/, "")})$` };
}

function objectParameters(schema: JSONSchema | undefined, where: "query" | "header"): Obj[] {
  if (typeof schema !== "object") return [];
  const required = Array.isArray(schema["required"]) ? (schema["required"] as unknown[]) : [];
  return Object.entries(propertiesOf(schema) ?? {}).map(([name, s]) => ({ name, in: where, required: required.includes(name), schema: s }));
}

function propertiesOf(schema: Obj | { readonly [k: string]: unknown }): Obj | undefined {
  const p = schema["properties"];
  return typeof p === "object" && p !== null ? (p as Obj) : undefined;
}

function itemsOf(schema: { readonly [k: string]: unknown }): unknown[] | undefined {
  const p = schema["prefixItems"];
  return Array.isArray(p) ? p : undefined;
}

const VALIDATION_PAGE = {
  type: "object",
  required: ["status", "reason", "errors"],
  properties: {
    status: { type: "integer" },
    reason: { type: "string" },
    errors: {
      type: "array",
      items: {
        type: "object",
        required: ["in", "path", "message"],
        properties: { in: { enum: ["params", "query", "headers", "body"] }, path: { type: "string" }, message: { type: "string" } },
      },
    },
  },
};
