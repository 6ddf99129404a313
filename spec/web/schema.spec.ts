// Handler schemas: validation after prepare() with coercion of params/query/headers, one 400 that
// lists every failure (JSON by default, HTML when preferred), the method not run on bad input,
// `this.valid` typed from the schema, invalid schemas rejected at construction, and response
// serialization that drops properties the schema does not name.
import t from "tap";
import { Type } from "@sinclair/typebox";
import { Application, ErrorCode, RequestHandler, TyphoonError, ValidationError, type Validated } from "../../core/index.ts";

const NewItem = Type.Object({ name: Type.String({ minLength: 1 }), qty: Type.Integer({ minimum: 0 }) });
const Item = Type.Object({ id: Type.Integer(), name: Type.String(), qty: Type.Integer() });

const calls: string[] = [];

class ItemHandler extends RequestHandler {
  static override schema = {
    get: {
      params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
      query: Type.Object({ verbose: Type.Optional(Type.Boolean()), tags: Type.Optional(Type.Array(Type.String())) }),
      headers: Type.Object({ "x-tenant": Type.Integer() }),
      response: { 200: Item },
    },
    put: {
      params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
      body: NewItem,
      response: { 200: Item },
    },
  };

  override prepare(): void {
    calls.push("prepare");
  }

  get(this: Validated<typeof ItemHandler, "get">, raw: Record<string, string | undefined>): void {
    calls.push("get");
    const id: number = this.valid.params.id;
    const verbose: boolean | undefined = this.valid.query.verbose;
    const tenant: number = this.valid.headers["x-tenant"];
    // Type errors `make typecheck` must report (never called: only the types are under test).
    const wrong = (): unknown[] => [
      // @ts-expect-error: `nmae` is not a property of the validated params
      this.valid.params.nmae,
      // @ts-expect-error: GET declares no body, so `valid.body` is undefined
      this.valid.body.name,
      // @ts-expect-error: `id` is a number, not a string
      this.valid.params.id.toUpperCase(),
    ];
    void wrong;
    this.write({ id, name: `raw ${raw["id"]} verbose ${String(verbose)} tenant ${tenant} tags ${this.valid.query.tags?.join(",")}`, qty: 0 });
  }

  put(this: Validated<typeof ItemHandler, "put">): void {
    calls.push("put");
    const { name, qty } = this.valid.body;
    const n: string = name;
    const q: number = qty;
    this.write({ id: this.valid.params.id, name: n, qty: q, secret: "s3cret" });
  }
}

class SecretHandler extends RequestHandler {
  static override schema = { get: { response: { 200: Item, "4xx": Type.Object({ error: Type.String() }) } } };
  get(): void {
    if (this.getArgument("fail", null) !== null) {
      this.setStatus(404);
      this.write({ error: "gone", stack: "internal" });
      return;
    }
    this.write({ id: 1, name: "a", qty: 2, secret: "s3cret" });
  }
}

class FormHandler extends RequestHandler {
  static override schema = { post: { body: Type.Object({ qty: Type.Integer(), note: Type.Optional(Type.String()) }) } };
  post(this: Validated<typeof FormHandler, "post">): void {
    this.write({ qty: this.valid.body.qty, type: typeof this.valid.body.qty });
  }
}

class PlainSchemaHandler extends RequestHandler {
  static override schema = {
    get: { query: { type: "object", properties: { n: { type: "integer" }, s: { type: "string" } }, required: ["n"] } },
  } as const;
  get(this: Validated<typeof PlainSchemaHandler, "get">): void {
    const n: number = this.valid.query.n;
    const s: string | undefined = this.valid.query.s;
    this.write({ n, s: s ?? null });
  }
}

class PositionalHandler extends RequestHandler {
  // 2020-12 tuples are `prefixItems` (TypeBox's Type.Tuple writes draft-07 `items: [...]`).
  static override schema = { get: { params: { type: "array", prefixItems: [{ type: "integer" }, { type: "string" }] } } } as const;
  get(this: Validated<typeof PositionalHandler, "get">): void {
    const [n, word] = this.valid.params;
    const typed: [number, string] = [n, word];
    this.write({ n: typed[0], word: typed[1] });
  }
}

const app = new Application([
  ["/items/(?<id>[^/]+)", ItemHandler],
  ["/secret", SecretHandler],
  ["/form", FormHandler],
  ["/plain", PlainSchemaHandler],
  ["/pos/([^/]+)/([^/]+)", PositionalHandler],
]);

t.beforeEach(() => { calls.length = 0; });

t.test("valid input reaches the method coerced and typed, after prepare()", async (t) => {
  const res = await app.inject({ url: "/items/42?verbose=true&tags=a&tags=b", headers: { "x-tenant": "7" } });
  t.equal(res.status, 200);
  t.same(res.json(), { id: 42, name: "raw 42 verbose true tenant 7 tags a,b", qty: 0 });
  t.same(calls, ["prepare", "get"]);
});

t.test("a single value for an array query parameter becomes a one-item array", async (t) => {
  const res = await app.inject({ url: "/items/1?tags=solo", headers: { "x-tenant": "1" } });
  t.match(res.json(), { name: /tags solo$/ });
});

t.test("two bad fields give one 400 listing both; the method does not run", async (t) => {
  const res = await app.inject({ method: "PUT", url: "/items/3", body: { name: "", qty: "many" } });
  t.equal(res.status, 400);
  t.equal(res.headers["content-type"], "application/json; charset=UTF-8");
  const page = res.json() as { status: number; reason: string; errors: { in: string; path: string; message: string }[] };
  t.equal(page.status, 400);
  t.same(page.errors.map((e) => `${e.in} ${e.path}`).sort(), ["body /name", "body /qty"]);
  for (const e of page.errors) t.type(e.message, "string");
  t.same(calls, ["prepare"], "prepare ran, the method did not");
});

t.test("failures in several parts are listed together, with missing properties named", async (t) => {
  const res = await app.inject({ url: "/items/0?verbose=maybe" });
  t.equal(res.status, 400);
  const errors = (res.json() as { errors: { in: string; path: string }[] }).errors;
  t.same(errors.map((e) => `${e.in} ${e.path}`).sort(), ["headers /x-tenant", "params /id", "query /verbose"]);
  t.same(calls, ["prepare"]);
});

t.test("the 400 page is HTML when the client prefers HTML, with every failure escaped", async (t) => {
  const res = await app.inject({
    method: "PUT", url: "/items/3", headers: { accept: "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8" },
    body: { name: "", qty: -1 },
  });
  t.equal(res.status, 400);
  t.equal(res.headers["content-type"], "text/html; charset=UTF-8");
  const html = res.text();
  t.match(html, /<title>400: Bad Request<\/title>/);
  t.match(html, /<code>body\/name<\/code> must NOT have fewer than 1 characters/);
  t.match(html, /<code>body\/qty<\/code> must be &gt;= 0/);
});

t.test("a body that is not JSON is a 400 (invalid JSON) or a 415 (another type)", async (t) => {
  const bad = await app.inject({ method: "PUT", url: "/items/3", headers: { "content-type": "application/json" }, body: "{nope" });
  t.equal(bad.status, 400);
  const text = await app.inject({ method: "PUT", url: "/items/3", headers: { "content-type": "text/plain" }, body: "hi" });
  t.equal(text.status, 415);
  const none = await app.inject({ method: "PUT", url: "/items/3" });
  t.equal(none.status, 400);
  t.same((none.json() as { errors: { in: string; path: string }[] }).errors.map((e) => `${e.in} ${e.path}`), ["body "]);
  // The body step parses leniently (Tornado's rule): all three fail in validation, after prepare().
  t.same(calls, ["prepare", "prepare", "prepare"]);
});

t.test("a response schema drops an unnamed property (secret), per status and status range", async (t) => {
  const ok = await app.inject({ url: "/secret" });
  t.equal(ok.headers["content-type"], "application/json; charset=UTF-8");
  t.same(ok.json(), { id: 1, name: "a", qty: 2 });
  t.notMatch(ok.text(), /secret/);
  const put = await app.inject({ method: "PUT", url: "/items/5", body: { name: "x", qty: 1 } });
  t.equal(put.status, 200);
  t.same(put.json(), { id: 5, name: "x", qty: 1 });
  const missing = await app.inject({ url: "/secret?fail=1" });
  t.equal(missing.status, 404);
  t.same(missing.json(), { error: "gone" });
});

t.test("form bodies are validated with coercion", async (t) => {
  const res = await app.inject({ method: "POST", url: "/form", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "qty=12" });
  t.same(res.json(), { qty: 12, type: "number" });
  const bad = await app.inject({ method: "POST", url: "/form", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "qty=x" });
  t.equal(bad.status, 400);
});

t.test("plain JSON Schema written `as const` types and validates the same way", async (t) => {
  t.same((await app.inject({ url: "/plain?n=5" })).json(), { n: 5, s: null });
  const bad = await app.inject({ url: "/plain" });
  t.equal(bad.status, 400);
  t.same((bad.json() as { errors: { path: string; message: string }[] }).errors, [{ in: "query", path: "/n", message: "must have required property 'n'" }]);
});

t.test("positional groups are validated as an array", async (t) => {
  t.same((await app.inject({ url: "/pos/9/nine" })).json(), { n: 9, word: "nine" });
  t.equal((await app.inject({ url: "/pos/x/nine" })).status, 400);
});

t.test("writeError receives the ValidationError with its failures", async (t) => {
  class Custom extends RequestHandler {
    static override schema = { post: { body: NewItem } };
    post(): void { this.write("never"); }
    override writeError(status: number, info: { error?: unknown } = {}): void {
      const failures = info.error instanceof ValidationError ? info.error.failures.length : -1;
      this.finish(`custom ${status} ${failures} ${info.error instanceof ValidationError ? info.error.code : ""}`);
    }
  }
  const res = await new Application([["/c", Custom]]).inject({ method: "POST", url: "/c", body: { qty: "x" } });
  t.equal(res.status, 400);
  t.equal(res.text(), `custom 400 2 ${ErrorCode.VALIDATION}`);
});

t.test("an invalid schema throws at construction, naming the handler and the method", async (t) => {
  class BadKeyword extends RequestHandler {
    static override schema = { post: { body: { type: "object", properties: { a: { type: "strnig" } } } } };
    post(): void {}
  }
  class BadFormat extends RequestHandler {
    static override schema = { get: { query: { type: "object", properties: { a: { type: "string", format: "no-such-format" } } } } };
    get(): void {}
  }
  // Misspellings a type checker would catch, as plain JavaScript (or a widened object) makes them.
  class BadMethod extends RequestHandler {}
  Object.assign(BadMethod, { schema: { pots: { body: { type: "object" } } } });
  class BadPart extends RequestHandler {}
  Object.assign(BadPart, { schema: { get: { bdoy: { type: "object" } } } });
  class UpperHeader extends RequestHandler {
    static override schema = { get: { headers: Type.Object({ "X-Tenant": Type.String() }) } };
  }
  const check = (cls: typeof RequestHandler, pattern: RegExp): void => {
    let thrown: unknown;
    try {
      new Application([["/x", cls]]);
    } catch (err) {
      thrown = err;
    }
    t.ok(thrown instanceof TyphoonError, `${cls.name} throws a TyphoonError`);
    t.match(thrown, { code: ErrorCode.SCHEMA, message: pattern });
  };
  check(BadKeyword, /BadKeyword: post body/);
  check(BadFormat, /BadFormat: get query: .*no-such-format/);
  check(BadMethod, /BadMethod: unknown method "pots"/);
  check(BadPart, /BadPart: get has an unknown key "bdoy"/);
  check(UpperHeader, /UpperHeader: get headers: name "X-Tenant" in lower case/);
  t.throws(() => new Application([], { defaultHandlerClass: BadKeyword }), { code: ErrorCode.SCHEMA });
});

t.test("a handler without a schema keeps this.valid empty and JSON.stringify output", async (t) => {
  class Plain extends RequestHandler {
    get(): void {
      this.write({ valid: [this.valid.params, this.valid.query, this.valid.headers, this.valid.body].map(String), secret: "</script>" });
    }
  }
  const res = await new Application([["/p", Plain]]).inject({ url: "/p" });
  t.equal(res.text(), '{"valid":["undefined","undefined","undefined","undefined"],"secret":"<\\/script>"}');
});

t.test("the JSON body is parsed once: by the body step, shared by validation and getJsonBody()", async (t) => {
  class Twice extends RequestHandler {
    static override schema = { post: { body: NewItem } };
    post(this: Validated<typeof Twice, "post">): void {
      const again = this.getJsonBody<{ name: string }>();
      this.write({ same: again === this.valid.body, name: again.name });
    }
  }
  const body = JSON.stringify({ name: "once", qty: 1 });
  const parse = JSON.parse;
  let parsed = 0;
  JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
    if (text === body) parsed++;
    return parse(text, reviver);
  }) as typeof JSON.parse;
  t.teardown(() => { JSON.parse = parse; });
  const res = await new Application([["/t", Twice]]).inject({ method: "POST", url: "/t", headers: { "content-type": "application/json" }, body });
  JSON.parse = parse;
  t.same(res.json(), { same: true, name: "once" });
  t.equal(parsed, 1);
});

t.test("HEAD is validated by get's schema and answers its headers without a body", async (t) => {
  const bad = await app.inject({ method: "HEAD", url: "/items/1" });
  t.equal(bad.status, 400);
  t.equal(bad.body.length, 0);
  const ok = await app.inject({ method: "HEAD", url: "/items/1", headers: { "x-tenant": "3" } });
  t.equal(ok.status, 200);
  t.equal(ok.headers["content-type"], "application/json; charset=UTF-8");
  t.equal(ok.body.length, 0);
});
