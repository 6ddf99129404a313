/**
 * Server-side templates: the small {@link TemplateLoader} interface any engine can sit behind,
 * the default loader on nunjucks (loaded on the first render, so apps without templates never
 * load it), the namespace every template sees (Tornado's `get_template_namespace`), and
 * {@link TemplateError}, which names the template and line of a failure.
 */
import { createRequire } from "node:module";
import { relative, resolve, sep } from "node:path";
import type * as Nunjucks from "nunjucks";
import { ErrorCode, TyphoonError } from "../errors.ts";
import type { Locale } from "./locale.ts";

/**
 * Any template engine, as typhoon sees it: render a named template with a namespace, and mark
 * a string as HTML that must not be escaped again. Set an instance as the `templateLoader`
 * setting to use another engine than the default.
 *
 * @example
 * const loader: TemplateLoader = {
 *   render: (name, ns) => myEngine.renderFile(name, ns),
 *   markSafe: (html) => myEngine.raw(html),
 * };
 * new Application(rules, { templateLoader: loader });
 */
export interface TemplateLoader {
  /** The rendered text of template `name`; may be async for engines that load asynchronously. */
  render(name: string, namespace: Record<string, unknown>): string | Promise<string>;
  /** Wraps HTML so that autoescaping leaves it alone (used for `xsrfFormHtml()`). */
  markSafe(html: string): unknown;
  /** Forgets compiled templates (optional). */
  reset?(): void;
}

/** The template settings of an application (part of `AppSettings`). */
export interface TemplateSettings {
  /** Directory (or directories) of the templates `render(name)` finds. */
  templatePath?: string | readonly string[];
  /** The engine; default: nunjucks on `templatePath`. */
  templateLoader?: TemplateLoader;
  /** HTML-escape `{{ expression }}` output (default true). */
  autoescape?: boolean;
  /** Keep compiled templates in memory (default true, false under `debug`). */
  compiledTemplateCache?: boolean;
  /** Debug mode: template caches off, among other things. */
  debug?: boolean;
}

/** Options of {@link NunjucksLoader}. */
export interface NunjucksLoaderOptions {
  /** Directory (or directories) searched for templates, in order. */
  path: string | readonly string[];
  /** HTML-escape `{{ expression }}` output (default true). */
  autoescape?: boolean;
  /** Keep compiled templates (default true); when false every render reads the file again. */
  cache?: boolean;
  /** Called once with the nunjucks `Environment` when it is created: add filters, globals, extensions. */
  configure?: (env: Nunjucks.Environment) => void;
}

type NunjucksModule = typeof Nunjucks;
const NOTE = /(?:^|\n)\s*(?:Template render error: )?\(([^()\n]+)\)(?: \[Line (\d+)(?:, Column \d+)?\])?/g;
let nunjucksModule: NunjucksModule | null = null;

// createRequire keeps the load lazy and synchronous: render() can finish the response in the
// same turn, like Tornado's, and apps that never render do not load nunjucks at all.
function nunjucks(): NunjucksModule {
  nunjucksModule ??= createRequire(import.meta.url)("nunjucks") as NunjucksModule;
  return nunjucksModule;
}

/**
 * The default engine: nunjucks (Jinja2 syntax, the closest relative of Tornado's
 * templates) with autoescaping on. `{{ expression }}`, `{% if %}…{% endif %}`,
 * `{% for x in xs %}…{% endfor %}`, `{% extends "base.html" %}`, `{% block body %}…{% endblock %}`,
 * `{% include "entry.html" %}`, `{% macro %}`, and function calls in expressions.
 */
export class NunjucksLoader implements TemplateLoader {
  readonly #options: NunjucksLoaderOptions;
  readonly #roots: string[];
  #env: Nunjucks.Environment | null = null;

  constructor(options: NunjucksLoaderOptions) {
    this.#options = options;
    this.#roots = (typeof options.path === "string" ? [options.path] : [...options.path]).map((p) => resolve(p));
  }

  render(name: string, namespace: Record<string, unknown>): string {
    try {
      return this.#environment().render(name, namespace);
    } catch (err) {
      throw this.#describe(name, err);
    }
  }

  markSafe(html: string): unknown {
    return new (nunjucks().runtime.SafeString)(html);
  }

  reset(): void {
    this.#env = null;
  }

  #environment(): Nunjucks.Environment {
    if (this.#env === null) {
      const nj = nunjucks();
      const loader = new nj.FileSystemLoader(this.#roots, { noCache: this.#options.cache === false });
      const env = new nj.Environment(loader, { autoescape: this.#options.autoescape ?? true });
      this.#options.configure?.(env);
      this.#env = env;
    }
    return this.#env;
  }

  // nunjucks builds its message as a chain of "(/abs/path.html) [Line n, Column m]" notes, one
  // per template it unwound through, the innermost last; it counts the lines of runtime errors
  // (a wrapped "SomeError: ...") from 0 and those of syntax errors from 1.
  #describe(requested: string, err: unknown): TemplateError {
    if (!(err instanceof Error)) return new TemplateError(requested, undefined, String(err), err);
    let last: RegExpExecArray | null = null;
    for (const m of err.message.matchAll(NOTE)) last = m as RegExpExecArray;
    if (last === null) {
      const missing = /^template not found: (.*)$/.exec(err.message);
      return new TemplateError(missing?.[1] ?? requested, undefined, err.message, err);
    }
    const detail = err.message.slice(last.index + last[0].length).trim();
    const runtime = /^[A-Za-z]*Error: /.test(detail);
    const line = last[2] === undefined ? undefined : Number(last[2]) + (runtime ? 1 : 0);
    return new TemplateError(this.#nameOf(last[1]!, requested), line, detail, err);
  }

  #nameOf(file: string, requested: string): string {
    if (file === "unknown path") return requested;
    for (const root of this.#roots) {
      const rel = relative(root, file);
      if (!rel.startsWith("..")) return rel.split(sep).join("/");
    }
    return file;
  }
}

/**
 * A template failed to compile or render. `template` and `line` say where (the innermost
 * template: an included or parent template when the error is there). The default error page
 * names them; the stack of the original error is served only with `serveTraceback`.
 */
export class TemplateError extends TyphoonError {
  /** The template's name, relative to `templatePath`. */
  readonly template: string;
  /** The 1-based line, when the engine reports one. */
  readonly line: number | undefined;

  constructor(template: string, line: number | undefined, detail: string, cause?: unknown) {
    super(ErrorCode.TEMPLATE, `${where(template, line)}: ${detail}`, cause === undefined ? undefined : { cause });
    this.template = template;
    this.line = line;
    // The engine's stack (its message repeated, then frames) says more than this wrapper's.
    if (cause instanceof Error && cause.stack !== undefined) {
      const frames = cause.stack.split("\n").filter((l) => /^\s+at /.test(l));
      this.stack = [`${this.name}: ${this.message}`, ...frames].join("\n");
    }
  }

  /** "Template error in entry.html, line 3": what the error page shows without tracebacks. */
  get summary(): string {
    return `Template error in ${where(this.template, this.line)}`;
  }
}

function where(template: string, line: number | undefined): string {
  return line === undefined ? template : `${template}, line ${line}`;
}

/**
 * What a default error page may show of an error when tracebacks are off: the template and
 * line of a {@link TemplateError}, nothing for any other error.
 */
export function publicErrorSummary(error: unknown): string | undefined {
  return error instanceof TemplateError ? error.summary : undefined;
}

const loaders = new WeakMap<object, TemplateLoader>();

/**
 * The application's template engine: the `templateLoader` setting, else a nunjucks loader on
 * `templatePath` (created once per settings object; caches off under `debug`).
 */
export function templateLoaderFor(settings: TemplateSettings): TemplateLoader {
  if (settings.templateLoader !== undefined) return settings.templateLoader;
  let loader = loaders.get(settings);
  if (loader === undefined) {
    const path = settings.templatePath;
    if (path === undefined) throw new TyphoonError(ErrorCode.SETTING_MISSING, "Set the templatePath setting (or templateLoader) to render templates");
    const cache = settings.compiledTemplateCache ?? !(settings.debug ?? false);
    loader = new NunjucksLoader({ path, autoescape: settings.autoescape ?? true, cache });
    loaders.set(settings, loader);
  }
  return loader;
}

/** The parts of a handler the template namespace is built from (a `RequestHandler` has them). */
export interface TemplateHost {
  readonly settings: TemplateSettings;
  readonly request: unknown;
  readonly currentUser: unknown;
  readonly locale: Locale;
  xsrfFormHtml(): string;
  staticUrl(path: string): string;
  reverseUrl(name: string, ...args: unknown[]): string;
}

/**
 * Tornado's default template namespace: `handler`, `request`, `currentUser`, `locale`, `_`
 * (translate), `xsrfFormHtml()` (safe HTML), `staticUrl(path)`, `reverseUrl(name, ...args)`,
 * and the helpers `urlEscape(text)` and `jsonEncode(value)`.
 */
export function defaultNamespace(handler: TemplateHost): Record<string, unknown> {
  const loader = templateLoaderFor(handler.settings);
  const locale = handler.locale;
  return {
    handler,
    request: handler.request,
    currentUser: handler.currentUser,
    locale,
    _: (message: string, plural?: string | null, count?: number | null, values?: Record<string, unknown>) =>
      locale.translate(message, plural, count, values),
    xsrfFormHtml: () => loader.markSafe(handler.xsrfFormHtml()),
    staticUrl: (path: string) => handler.staticUrl(path),
    reverseUrl: (name: string, ...args: unknown[]) => handler.reverseUrl(name, ...args),
    urlEscape: (text: string) => encodeURIComponent(text),
    jsonEncode: (value: unknown) => JSON.stringify(value).replace(/<\//g, "<\\/"),
  };
}

/** What `render()` needs of a handler. */
export interface RenderTarget {
  readonly settings: TemplateSettings;
  getTemplateNamespace(): Record<string, unknown>;
  resolveCurrentUser(): Promise<unknown>;
  finish(chunk: string): void;
}

/**
 * Template `name` rendered with the handler's namespace and `namespace` (which wins), by the
 * application's loader: a string from a synchronous engine, a promise from an asynchronous one.
 * The namespace holds `currentUser`: an async `getCurrentUser()` not yet resolved is awaited
 * first (the result is then a promise).
 */
export function renderText(handler: RenderTarget, name: string, namespace: Record<string, unknown>): string | Promise<string> {
  let full: Record<string, unknown>;
  try {
    full = { ...handler.getTemplateNamespace(), ...namespace };
  } catch (err) {
    if (err instanceof TyphoonError && err.code === ErrorCode.CURRENT_USER_ASYNC) {
      return handler.resolveCurrentUser().then(() => renderText(handler, name, namespace));
    }
    throw err;
  }
  return templateLoaderFor(handler.settings).render(name, full);
}

/**
 * Renders and finishes. A synchronous engine finishes the response before this returns and
 * throws synchronously (so `render()` without `await` behaves like Tornado's).
 */
export function renderPage(handler: RenderTarget, name: string, namespace: Record<string, unknown>): Promise<void> {
  const text = renderText(handler, name, namespace);
  if (typeof text === "string") {
    handler.finish(text);
    return Promise.resolve();
  }
  return text.then((page) => { handler.finish(page); });
}
