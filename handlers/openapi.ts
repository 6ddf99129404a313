/**
 * `OpenAPIHandler`: serves the application's OpenAPI 3.1 document (`app.openapi(options)`) as JSON,
 * built on the first request and kept for the application's life.
 */
import { RequestHandler } from "../core/handler.ts";
import type { Application } from "../core/app.ts";
import type { OpenAPIDocument, OpenAPIOptions } from "../core/web/openapi.ts";

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
    let byOptions = documents.get(this.application);
    if (byOptions === undefined) documents.set(this.application, (byOptions = new Map()));
    const key = JSON.stringify(this.#options);
    let text = byOptions.get(key);
    if (text === undefined) {
      const doc: OpenAPIDocument = this.application.openapi(this.#options);
      text = JSON.stringify(doc);
      byOptions.set(key, text);
    }
    this.setHeader("Content-Type", "application/json; charset=UTF-8");
    this.finish(text);
  }
}
