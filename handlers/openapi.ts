/**
 * `OpenAPIHandler`: serves the application's OpenAPI 3.1 document (`app.openapi(options)`) as JSON,
 * built on the first request and kept for the application's life.
 */
import { HTTPError } from "../core/errors.ts";
import { Application } from "../core/web/app.ts";
import { RequestHandler } from "../core/web/handler.ts";
import type { OpenAPIOptions } from "../core/web/openapi.ts";

const documents = new WeakMap<Application, Map<string, string>>();

/**
 * Serves `app.openapi(initArgs)` as `application/json`.
 *
 * @example
 * new Application([
 *   ["/items", ItemsHandler],
 *   ["/openapi.json", OpenAPIHandler, { info: { title: "Items", version: "1.0.0" } }],
 * ]);
 */
export class OpenAPIHandler extends RequestHandler {
  #options: OpenAPIOptions = { info: { title: "API", version: "0.0.0" } };

  override initialize(options?: OpenAPIOptions): void {
    if (options !== undefined) this.#options = options;
  }

  get(): void {
    const app = this.application;
    // A handler sees its application through ApplicationView; the document needs the rule table.
    if (!(app instanceof Application)) throw new HTTPError(500, "OpenAPIHandler is served by something other than an Application");
    let byOptions = documents.get(app);
    if (byOptions === undefined) documents.set(app, (byOptions = new Map()));
    const key = JSON.stringify(this.#options);
    let text = byOptions.get(key);
    if (text === undefined) {
      text = JSON.stringify(app.openapi(this.#options));
      byOptions.set(key, text);
    }
    this.setHeader("Content-Type", "application/json; charset=UTF-8");
    this.finish(text);
  }
}
