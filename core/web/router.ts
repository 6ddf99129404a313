/**
 * The regex router: compiles Tornado-style rules once, matches a path, reverses a named rule.
 *
 * Rules are tried in order and the first match wins, as in Tornado. To keep a large table from
 * costing a linear scan of regexes per request, each rule is filed in a tree under the complete
 * path segments of its literal prefix (`/api/users/(\d+)` → `api` → `users`); a path walks the
 * tree along its own segments and tries only the rules filed on that walk, which were merged once,
 * at build time, in rule order (rules with no fixed segment sit at the root and are always tried).
 * Fully literal rules (`/`, `/health`) are compared as strings, never run as regexes.
 */
import { ErrorCode, TyphoonError } from "../errors.ts";

/** One compiled rule. `target` is whatever the caller routes to (a handler class, for the app). */
export interface Route<T> {
  readonly index: number;
  readonly source: string;
  readonly regex: RegExp;
  /** The full path when the pattern has no regex syntax, else `null`. */
  readonly literal: string | null;
  readonly target: T;
  readonly name: string | undefined;
  /** Names of the named groups, in order, or `null` when groups are positional (or absent). */
  readonly groupNames: readonly string[] | null;
  readonly groupCount: number;
}

/** The result of a successful match: the route and its raw (still percent-encoded) groups. */
export interface RouteMatch<T> {
  readonly route: Route<T>;
  /** Positional groups, or the values of the named groups in `route.groupNames` order. */
  readonly groups: readonly (string | undefined)[];
}

const META = new Set("\\^$.|?*+()[]{}");
const QUANTIFIERS = new Set("?*+{");

/**
 * A compiled, ordered rule table.
 *
 * @example
 * const router = new Router<string>();
 * router.add("/users/(\\d+)", "user", "user");
 * router.match("/users/42"); // { route, groups: ["42"] }
 * router.reverse("user", [42]); // "/users/42"
 */
export class Router<T> {
  readonly #routes: Route<T>[] = [];
  readonly #names = new Map<string, Route<T>>();
  #root: RouteNode<T> | null = null;

  /** Adds a rule at the end of the table. Throws `E_ROUTE_PATTERN` for an invalid pattern. */
  add(pattern: string | RegExp, target: T, name?: string): Route<T> {
    const route = compileRoute(this.#routes.length, pattern, target, name);
    this.#routes.push(route);
    if (name !== undefined) this.#names.set(name, route);
    this.#root = null;
    return route;
  }

  /** The rules in order. */
  get routes(): readonly Route<T>[] {
    return this.#routes;
  }

  /** The first rule matching `path` (without its query string), or `null`. */
  match(path: string): RouteMatch<T> | null {
    const candidates = this.#candidates(path);
    for (let i = 0; i < candidates.length; i++) {
      const route = candidates[i]!;
      if (route.literal !== null) {
        if (route.literal === path) return { route, groups: NO_GROUPS };
        continue;
      }
      const m = route.regex.exec(path);
      if (m === null) continue;
      if (route.groupNames !== null) {
        const named = m.groups!;
        return { route, groups: route.groupNames.map((n) => named[n]) };
      }
      return { route, groups: route.groupCount === 0 ? [] : m.slice(1) };
    }
    return null;
  }

  /** Whether a rule is named `name`. */
  has(name: string): boolean {
    return this.#names.has(name);
  }

  /**
   * The path for the rule named `name`, each argument converted with `String()` and
   * percent-encoded (`/` kept). A single plain object fills named groups by name.
   * Throws `E_REVERSE_URL` for an unknown name, a wrong argument count or an irreversible pattern.
   */
  reverse(name: string, args: readonly unknown[]): string {
    const route = this.#names.get(name);
    if (route === undefined) throw new TyphoonError(ErrorCode.REVERSE_URL, `reverseUrl: no rule is named ${JSON.stringify(name)}`);
    const parts = routeTemplate(route.source)?.literals ?? null;
    // Non-capturing or nested groups would shift the arguments: Tornado refuses those too.
    if (parts === null || parts.length - 1 !== route.groupCount) {
      throw new TyphoonError(ErrorCode.REVERSE_URL, `reverseUrl: the pattern ${route.source} of ${JSON.stringify(name)} cannot be reversed`);
    }
    let values = args;
    const only = args[0];
    if (route.groupNames !== null && args.length === 1 && isPlainObject(only)) {
      values = route.groupNames.map((n) => only[n]);
    }
    const slots = parts.length - 1;
    if (values.length !== slots) {
      throw new TyphoonError(ErrorCode.REVERSE_URL,
        `reverseUrl: ${JSON.stringify(name)} takes ${slots} argument${slots === 1 ? "" : "s"}, got ${values.length}`);
    }
    let out = parts[0]!;
    for (let i = 0; i < slots; i++) out += urlEscapePath(String(values[i])) + parts[i + 1]!;
    return out;
  }

  #candidates(path: string): readonly Route<T>[] {
    let node = this.#root ?? this.#build();
    let start = 1;
    for (;;) {
      const end = path.indexOf("/", start);
      const next = node.children.get(end === -1 ? path.slice(start) : path.slice(start, end));
      if (next === undefined) break;
      node = next;
      if (end === -1) break;
      start = end + 1;
    }
    return node.candidates;
  }

  #build(): RouteNode<T> {
    const root = routeNode<T>();
    for (const route of this.#routes) {
      let node = root;
      for (const segment of fixedSegments(route)) {
        let child = node.children.get(segment);
        if (child === undefined) node.children.set(segment, (child = routeNode()));
        node = child;
      }
      node.own.push(route);
    }
    // A node's candidates are its own rules and all its ancestors', in rule order, so the walk
    // ends on one list and "first match wins" holds.
    const fill = (node: RouteNode<T>, inherited: readonly Route<T>[]): void => {
      node.candidates = node.own.length === 0 ? inherited : [...inherited, ...node.own].sort((a, b) => a.index - b.index);
      for (const child of node.children.values()) fill(child, node.candidates);
    };
    fill(root, []);
    this.#root = root;
    return root;
  }
}

/** The groups of a literal route: one frozen empty list. */
const NO_GROUPS: readonly (string | undefined)[] = Object.freeze([]);

interface RouteNode<T> {
  readonly children: Map<string, RouteNode<T>>;
  readonly own: Route<T>[];
  candidates: readonly Route<T>[];
}

function routeNode<T>(): RouteNode<T> {
  return { children: new Map(), own: [], candidates: [] };
}

/** Compiles one rule: anchors it, counts and checks its groups, finds its literal form. */
export function compileRoute<T>(index: number, pattern: string | RegExp, target: T, name?: string): Route<T> {
  const raw = typeof pattern === "string" ? pattern : pattern.source;
  const flags = typeof pattern === "string" ? "" : pattern.flags.replace(/[gy]/g, "");
  const source = stripAnchors(raw);
  let regex: RegExp;
  let probe: RegExpExecArray;
  try {
    regex = new RegExp(`^(?:${source})$`, flags);
    // An alternative that always matches the empty string reveals the group structure.
    probe = new RegExp(`${source}|`, flags).exec("")!;
  } catch (err) {
    throw new TyphoonError(ErrorCode.ROUTE_PATTERN, `Invalid route pattern ${raw}: ${(err as Error).message}`, { cause: err });
  }
  const groupCount = probe.length - 1;
  const names = probe.groups ? Object.keys(probe.groups) : [];
  if (names.length > 0 && names.length !== groupCount) {
    throw new TyphoonError(ErrorCode.ROUTE_PATTERN,
      `Route pattern ${raw} mixes named and positional groups; use one kind (Tornado's rule)`);
  }
  const literal = flags === "" ? literalOf(source) : null;
  return { index, source, regex, literal, target, name, groupNames: names.length > 0 ? names : null, groupCount };
}

function stripAnchors(source: string): string {
  let s = source.startsWith("^") ? source.slice(1) : source;
  if (s.endsWith("$") && !s.endsWith("\\$")) s = s.slice(0, -1);
  return s;
}

/** The literal text a pattern starts with, and whether that is the whole pattern. */
function literalPrefix(source: string): { prefix: string; whole: boolean } {
  if (source.includes("|")) return { prefix: "", whole: false };
  let prefix = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    let char: string;
    let width: number;
    if (c === "\\") {
      const next = source[i + 1];
      // An escaped punctuation character is itself; `\d`, `\w`, ... are classes.
      if (next === undefined || /[A-Za-z0-9]/.test(next)) break;
      char = next;
      width = 2;
    } else if (META.has(c)) {
      break;
    } else {
      char = c;
      width = 1;
    }
    if (QUANTIFIERS.has(source[i + width] ?? "")) break;
    prefix += char;
    i += width;
  }
  return { prefix, whole: i === source.length };
}

function literalOf(source: string): string | null {
  const { prefix, whole } = literalPrefix(source);
  return whole ? prefix : null;
}

/** The path segments every match of a rule starts with (none: it is tried for every path). */
function fixedSegments<T>(route: Route<T>): string[] {
  if (route.regex.flags !== "") return [];
  const { prefix, whole } = literalPrefix(route.source);
  if (!prefix.startsWith("/")) return [];
  const pieces = prefix.slice(1).split("/");
  // The last piece is a whole segment only when the pattern is all literal.
  return whole ? pieces : pieces.slice(0, -1);
}

/**
 * Splits a pattern into the literal text around its top-level groups and the groups' own
 * sources, Tornado's `_find_groups`: `/a/(\d+)/b` → `{ literals: ["/a/", "/b"], groups: ["\d+"] }`.
 * `null` when the pattern has regex syntax outside its groups, which no argument list could
 * reproduce. Used by `reverse` and by the OpenAPI document.
 */
export function routeTemplate(source: string): { literals: string[]; groups: string[] } | null {
  const literals: string[] = [];
  const groups: string[] = [];
  let current = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === "(") {
      let depth = 0;
      let j = i;
      for (; j < source.length; j++) {
        const d = source[j];
        if (d === "\\") j++;
        else if (d === "(") depth++;
        else if (d === ")" && --depth === 0) break;
      }
      if (j >= source.length) return null;
      literals.push(current);
      groups.push(source.slice(i + 1, j));
      current = "";
      i = j + 1;
      if (QUANTIFIERS.has(source[i] ?? "")) return null;
      continue;
    }
    if (c === "\\") {
      const next = source[i + 1];
      if (next === undefined || /[A-Za-z0-9]/.test(next)) return null;
      current += next;
      i += 2;
      continue;
    }
    if (META.has(c)) return null;
    current += c;
    i++;
  }
  literals.push(current);
  return { literals, groups };
}

/** Percent-encodes a path argument like Python's `quote(s, safe="/")`. */
export function urlEscapePath(value: string): string {
  return encodeURIComponent(value).replace(/%2F/g, "/").replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}
