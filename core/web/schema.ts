/**
 * Handler schemas at run time: `static schema` compiled once per handler class when the
 * `Application` is built (Ajv, JSON Schema draft 2020-12, with ajv-formats), the request's
 * params, query, headers and body validated before the method (strings coerced where they come
 * from the URL or headers), and JSON responses serialized by fast-json-stringify when a
 * response schema names the status.
 *
 * The libraries are loaded with `require` on the first class that has a schema: an app without
 * schemas never loads them (startup) and pays one property read per request. `require` rather
 * than `import()` because the `Application` constructor, which compiles, is synchronous; all
 * three are CommonJS packages.
 */
import { createRequire } from "node:module";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import { escapeHtml, prefersHtml } from "../http/error-page.ts";
import { mediaType } from "../http/headers.ts";
import { requestJson, type HTTPServerRequest } from "./request.ts";
import { ErrorCode, HTTPError, TyphoonError, ValidationError, type ValidationFailure } from "../errors.ts";
import type {
  HandlerSchema, JSONSchema, MethodSchema, ResponseSchemas, ValidInput, ValidationPart,
} from "./schema-types.ts";

/** What compiling needs of a handler class (structural: this file does not import the handler). */
export interface SchemaHolder {
  readonly name: string;
  readonly schema?: HandlerSchema | undefined;
  readonly streamRequestBody?: boolean;
}

/** A compiled JSON serializer (fast-json-stringify). */
export type Serializer = (value: unknown) => string;

const METHODS = new Set(["get", "head", "post", "put", "patch", "delete", "options"]);
const METHOD_KEYS = new Set(["params", "query", "headers", "body", "response", "summary", "description", "tags"]);
const EMPTY_VALID: ValidInput = Object.freeze({ params: undefined, query: undefined, headers: undefined, body: undefined });

/** `this.valid` before validation, or for a method without a schema. */
export function emptyValid(): ValidInput {
  return EMPTY_VALID;
}

interface CompiledMethod {
  readonly params: ValidateFunction | undefined;
  readonly query: ValidateFunction | undefined;
  readonly headers: ValidateFunction | undefined;
  readonly body: ValidateFunction | undefined;
  /** The body schema, for a form body (compiled with coercion on first use). */
  readonly bodySchema: JSONSchema | undefined;
  formBody: ValidateFunction | undefined;
  /** By exact status (`201`), then by range (`"2xx"`) or `"default"`. */
  readonly serializers: ReadonlyMap<number, Serializer>;
  readonly rangeSerializers: ReadonlyMap<string, Serializer>;
}

/** A handler class's compiled schema: validators and serializers per HTTP method. */
export class CompiledSchema {
  readonly #owner: string;
  /** By the request's method as received (`POST`); HEAD falls back to `get`'s schema. */
  readonly #methods: ReadonlyMap<string, CompiledMethod>;

  constructor(owner: string, methods: ReadonlyMap<string, CompiledMethod>) {
    this.#owner = owner;
    const byRequestMethod = new Map<string, CompiledMethod>();
    for (const [name, m] of methods) byRequestMethod.set(name.toUpperCase(), m);
    const get = methods.get("get");
    if (!methods.has("head") && get !== undefined) byRequestMethod.set("HEAD", get);
    this.#methods = byRequestMethod;
  }

  /**
   * Validates the request for `method` (HEAD uses `head`, else `get`): the values as validated
   * and coerced, or a `ValidationError` (400) listing every failure.
   */
  validate(method: string, request: HTTPServerRequest, pathArgs: readonly (string | undefined)[], pathKwargs: Readonly<Record<string, string | undefined>>, named: boolean): ValidInput {
    const m = this.#methods.get(method);
    if (m === undefined) return EMPTY_VALID;
    const failures: ValidationFailure[] = [];
    const params = m.params === undefined ? undefined : check(m.params, "params", named ? { ...pathKwargs } : [...pathArgs], failures);
    const query = m.query === undefined ? undefined : check(m.query, "query", flatten(request.queryArguments), failures);
    const headers = m.headers === undefined ? undefined : check(m.headers, "headers", { ...request.headers }, failures);
    const body = m.body === undefined ? undefined : this.#checkBody(m, request, failures);
    if (failures.length > 0) throw new ValidationError(failures);
    return { params, query, headers, body };
  }

  /** The serializer of `method`'s response schema for `status` (exact, then `"4xx"`-style, then `"default"`). */
  serializer(method: string, status: number): Serializer | undefined {
    const m = this.#methods.get(method);
    if (m === undefined) return undefined;
    const exact = m.serializers.get(status);
    if (exact !== undefined || m.rangeSerializers.size === 0) return exact;
    return m.rangeSerializers.get(`${Math.floor(status / 100)}xx`) ?? m.rangeSerializers.get("default");
  }

  #checkBody(m: CompiledMethod, request: HTTPServerRequest, failures: ValidationFailure[]): unknown {
    const type = mediaType(request.headers["content-type"] ?? "");
    if (type === "application/x-www-form-urlencoded" || type === "multipart/form-data") {
      m.formBody ??= compilePart(libraries().coercing, this.#owner, "", "body", m.bodySchema!);
      return check(m.formBody, "body", flatten(request.bodyArguments), failures);
    }
    if (request.body.length > 0 && type !== "application/json" && !type.endsWith("+json")) {
      throw new HTTPError(415, `A ${type || "body without Content-Type"} where a JSON or form body is expected`);
    }
    return check(m.body!, "body", request.body.length === 0 ? undefined : requestJson(request), failures);
  }
}

const compiled = new WeakMap<SchemaHolder, CompiledSchema>();

/**
 * The compiled schema of a handler class, compiling it on first use; `undefined` when the class
 * has no `static schema`. Throws `E_SCHEMA` naming the handler and method for an invalid schema.
 */
export function compileHandlerSchema(cls: SchemaHolder): CompiledSchema | undefined {
  const schema = cls.schema;
  if (schema === undefined) return undefined;
  let result = compiled.get(cls);
  if (result === undefined) {
    result = compile(cls, schema);
    compiled.set(cls, result);
  }
  return result;
}

function compile(cls: SchemaHolder, schema: HandlerSchema): CompiledSchema {
  const owner = cls.name || "(anonymous handler)";
  const fail = (what: string): never => { throw new TyphoonError(ErrorCode.SCHEMA, `Invalid schema of ${owner}: ${what}`); };
  if (typeof schema !== "object" || schema === null) fail("static schema must be an object of method schemas");
  const { plain, coercing, buildSerializer } = libraries();
  const methods = new Map<string, CompiledMethod>();
  for (const [method, value] of Object.entries(schema) as [string, unknown][]) {
    if (!METHODS.has(method)) fail(`unknown method ${JSON.stringify(method)} (use lower-case get, post, ...)`);
    if (value === undefined) continue;
    if (typeof value !== "object" || value === null) fail(`${method} must be an object with params, query, headers, body, response`);
    const m = value as MethodSchema;
    for (const key of Object.keys(m)) if (!METHOD_KEYS.has(key)) fail(`${method} has an unknown key ${JSON.stringify(key)}`);
    const upper = m.headers === undefined ? undefined : upperCaseHeader(m.headers);
    if (upper !== undefined) fail(`${method} headers: name ${JSON.stringify(upper)} in lower case, as node gives it`);
    if (m.body !== undefined && cls.streamRequestBody === true) fail(`${method} has a body schema, but the handler streams its body`);
    const serializers = new Map<number, Serializer>();
    const rangeSerializers = new Map<string, Serializer>();
    for (const [status, responseSchema] of Object.entries(m.response ?? {} as ResponseSchemas)) {
      if (!/^(?:[1-5](?:\d\d|xx)|default)$/i.test(status)) fail(`${method} response status ${JSON.stringify(status)} is not a status, "2xx" or "default"`);
      try {
        const serialize = buildSerializer(responseSchema as object);
        if (/^\d+$/.test(status)) serializers.set(Number(status), serialize);
        else rangeSerializers.set(status.toLowerCase(), serialize);
      } catch (err) {
        throw new TyphoonError(ErrorCode.SCHEMA, `Invalid schema of ${owner}: ${method} response ${status}: ${(err as Error).message}`, { cause: err });
      }
    }
    methods.set(method, {
      params: m.params === undefined ? undefined : compilePart(coercing, owner, method, "params", m.params),
      query: m.query === undefined ? undefined : compilePart(coercing, owner, method, "query", m.query),
      headers: m.headers === undefined ? undefined : compilePart(coercing, owner, method, "headers", m.headers),
      body: m.body === undefined ? undefined : compilePart(plain, owner, method, "body", m.body),
      bodySchema: m.body,
      formBody: undefined,
      serializers,
      rangeSerializers,
    });
  }
  return new CompiledSchema(owner, methods);
}

function compilePart(ajv: AjvInstance, owner: string, method: string, part: ValidationPart, schema: JSONSchema): ValidateFunction {
  try {
    return ajv.compile(schema);
  } catch (err) {
    throw new TyphoonError(ErrorCode.SCHEMA, `Invalid schema of ${owner}: ${method} ${part}: ${(err as Error).message}`, { cause: err });
  }
}

function check(validate: ValidateFunction, part: ValidationPart, data: unknown, failures: ValidationFailure[]): unknown {
  // Ajv coerces and fills defaults in place, inside the object handed to it (a copy, for params,
  // query and headers).
  if (validate(data)) return data;
  for (const e of validate.errors ?? []) failures.push(failureOf(part, e));
  return undefined;
}

// The path names the property itself for a missing or an unexpected one (Ajv reports the parent).
function failureOf(part: ValidationPart, e: ErrorObject): ValidationFailure {
  const params = e.params as { missingProperty?: unknown; additionalProperty?: unknown };
  const name = e.keyword === "required" ? params.missingProperty : e.keyword === "additionalProperties" ? params.additionalProperty : undefined;
  const path = typeof name === "string" ? `${e.instancePath}/${name.replace(/~/g, "~0").replace(/\//g, "~1")}` : e.instancePath;
  return { in: part, path, message: e.message ?? `fails ${e.keyword}` };
}

// A name given once is a string; repeated (`?tag=a&tag=b`) it is an array, for an array schema.
// A null prototype: a name like `__proto__` stays an own property, never the object's prototype.
function flatten(args: Readonly<Record<string, string[]>>): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const name in args) {
    const values = args[name]!;
    out[name] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

// node lower-cases header names, and `this.valid.headers` is typed by the schema's names.
function upperCaseHeader(schema: JSONSchema): string | undefined {
  if (typeof schema !== "object" || typeof schema["properties"] !== "object" || schema["properties"] === null) return undefined;
  return Object.keys(schema["properties"]).find((name) => name !== name.toLowerCase());
}

// ---- The libraries, loaded on first use ----------------------------------------------------

type AjvClass = typeof import("ajv/dist/2020.js").default;
type AjvInstance = InstanceType<AjvClass>;

interface Libraries {
  /** Validates bodies: JSON types are what the client sent. */
  readonly plain: AjvInstance;
  /** Validates params, query, headers and form bodies: strings are coerced to the schema's types. */
  readonly coercing: AjvInstance;
  readonly buildSerializer: (schema: object) => Serializer;
}

let libs: Libraries | undefined;

function libraries(): Libraries {
  return (libs ??= loadLibraries());
}

function loadLibraries(): Libraries {
  const require = createRequire(import.meta.url);
  const Ajv = (require("ajv/dist/2020.js") as typeof import("ajv/dist/2020.js")).default;
  const addFormats = (require("ajv-formats") as typeof import("ajv-formats")).default;
  const fastJson = require("fast-json-stringify") as typeof import("fast-json-stringify");
  const make = (coerceTypes: false | "array"): AjvInstance => {
    // allErrors: the 400 page lists every failure, not the first. strict: a misspelt keyword or
    // an unknown format is an error at construction rather than a check silently skipped.
    const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, useDefaults: true, coerceTypes, discriminator: true });
    addFormats(ajv);
    ajv.addKeyword("example"); // OpenAPI's annotation, common in schemas written for documents
    return ajv;
  };
  return { plain: make(false), coercing: make("array"), buildSerializer: (schema) => fastJson(schema) as Serializer };
}

// ---- The 400 page ---------------------------------------------------------------------------

/**
 * The page of a failed validation: JSON (`{ status, reason, errors: [{ in, path, message }] }`)
 * unless the client prefers HTML, then an HTML list of the same failures.
 */
export function validationPage(failures: readonly ValidationFailure[], accept: string | undefined): { body: string; contentType: string } {
  if (!prefersHtml(accept)) {
    return { body: JSON.stringify({ status: 400, reason: "Bad Request", errors: failures }), contentType: "application/json; charset=UTF-8" };
  }
  const items = failures.map((f) => `<li><code>${escapeHtml(`${f.in}${f.path}`)}</code> ${escapeHtml(f.message)}</li>`).join("");
  return {
    body: `<html><title>400: Bad Request</title><body><h1>400: Bad Request</h1><ul>${items}</ul></body></html>`,
    contentType: "text/html; charset=UTF-8",
  };
}
