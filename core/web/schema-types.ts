/**
 * The types of handler schemas: what `static schema` holds, and the static type of `this.valid`
 * inferred from it (TypeBox schemas through their phantom `static` type, plain JSON Schema
 * written `as const` through a small inference of our own), so TypeBox stays a type-level,
 * optional companion and nothing here exists at run time.
 */
import type { ValidationFailure } from "../errors.ts";

/** A JSON Schema (draft 2020-12): a schema object, or `true`/`false`. TypeBox schemas are ones. */
export type JSONSchema = boolean | { readonly [keyword: string]: unknown };

/** Response schemas by status: `200`, `201`, ..., a range such as `"2xx"`, or `"default"`. */
export type ResponseSchemas = { readonly [status: number | string]: JSONSchema };

/**
 * The schema of one HTTP method of a handler. Each part is a JSON Schema; `params` describes the
 * named path groups (an object) or the positional ones (an array), `query` and `headers` an object
 * whose string values are coerced to the schema's types (header names in lower case).
 */
export interface MethodSchema {
  readonly params?: JSONSchema;
  readonly query?: JSONSchema;
  readonly headers?: JSONSchema;
  readonly body?: JSONSchema;
  readonly response?: ResponseSchemas;
  /** The operation's summary in the OpenAPI document. */
  readonly summary?: string;
  /** A longer description for the OpenAPI document. */
  readonly description?: string;
  /** The operation's tags in the OpenAPI document. */
  readonly tags?: readonly string[];
}

/** `static schema` of a handler class: a {@link MethodSchema} per lower-case HTTP method. */
export interface HandlerSchema {
  readonly get?: MethodSchema;
  readonly head?: MethodSchema;
  readonly post?: MethodSchema;
  readonly put?: MethodSchema;
  readonly patch?: MethodSchema;
  readonly delete?: MethodSchema;
  readonly options?: MethodSchema;
}

/** Where a validation failure was found. */
export type ValidationPart = ValidationFailure["in"];

/** `this.valid` of a handler whose method has no schema: every part `undefined`. */
export interface ValidInput {
  readonly params: unknown;
  readonly query: unknown;
  readonly headers: unknown;
  readonly body: unknown;
}

/** The JSON Schema `type` names. */
export type JSONType = "object" | "string" | "number" | "integer" | "boolean" | "array" | "null";

/**
 * The TypeScript type of the values a JSON Schema accepts. A TypeBox schema gives its own
 * `Static` type; a plain schema must be written `as const` for its literals to be seen, and
 * covers `type` (one or a list), `properties`/`required`, `items`, `prefixItems`, `enum`, `const`, `anyOf`/`oneOf`;
 * anything else is `unknown` (to be narrowed, never `any`).
 */
export type FromSchema<S> =
  S extends { readonly static: infer T } ? T :
  S extends { readonly const: infer C } ? C :
  S extends { readonly enum: readonly (infer E)[] } ? E :
  S extends { readonly anyOf: readonly (infer A)[] } ? FromSchema<A> :
  S extends { readonly oneOf: readonly (infer A)[] } ? FromSchema<A> :
  S extends { readonly type: infer T extends JSONType } ? FromType<T, S> :
  S extends { readonly type: readonly (infer T extends JSONType)[] } ? FromType<T, S> :
  unknown;

/** The TypeScript type of one JSON Schema `type` name, for schema `S`. */
export type FromType<T, S> =
  T extends "string" ? string :
  T extends "number" | "integer" ? number :
  T extends "boolean" ? boolean :
  T extends "null" ? null :
  T extends "array" ? FromArray<S> :
  T extends "object" ? FromObject<S> :
  never;

type FromArray<S> =
  S extends { readonly prefixItems: infer P extends readonly unknown[] } ? { -readonly [K in keyof P]: FromSchema<P[K]> } :
  S extends { readonly items: infer I } ? FromSchema<I>[] :
  unknown[];

type FromObject<S> = S extends { readonly properties: infer P extends object }
  ? Flatten<
    { -readonly [K in keyof P as K extends RequiredOf<S> ? K : never]: FromSchema<P[K]> } &
    { -readonly [K in keyof P as K extends RequiredOf<S> ? never : K]?: FromSchema<P[K]> }>
  : Record<string, unknown>;

type RequiredOf<S> = S extends { readonly required: readonly (infer R)[] } ? R : never;

type Flatten<T> = { [K in keyof T]: T[K] };

/** `this.valid` for one method schema: each part's type, `undefined` for a part it does not declare. */
export type ValidOf<M> = {
  readonly params: M extends { readonly params: infer P } ? FromSchema<P> : undefined;
  readonly query: M extends { readonly query: infer P } ? FromSchema<P> : undefined;
  readonly headers: M extends { readonly headers: infer P } ? FromSchema<P> : undefined;
  readonly body: M extends { readonly body: infer P } ? FromSchema<P> : undefined;
};

/** The `static schema` of a handler class `C`. */
export type SchemaOf<C> = C extends { readonly schema: infer S } ? S : never;

/**
 * The `this` type of a handler method whose input its class's `static schema` describes:
 * the handler itself, with `valid` typed from the method's schema. The method name is checked
 * against the schema's keys, so the type cannot drift from what is validated.
 *
 * @example
 * class ItemsHandler extends RequestHandler {
 *   static override schema = { post: { body: Type.Object({ name: Type.String(), qty: Type.Integer() }) } };
 *   post(this: Validated<typeof ItemsHandler, "post">): void {
 *     const { name, qty } = this.valid.body; // string, number
 *   }
 * }
 */
export type Validated<C extends abstract new (...args: never[]) => object, M extends keyof SchemaOf<C>> =
  InstanceType<C> & { readonly valid: ValidOf<SchemaOf<C>[M]> };
