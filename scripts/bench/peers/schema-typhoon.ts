/**
 * Schema benchmark subject: typhoon with `static schema` (Ajv validation, fast-json-stringify
 * serialization), served by `HTTPServer.listen` in one process.
 */
import { Application, RequestHandler, type Validated } from "../../../core/index.ts";
import { Item, NewItem, REPORT, Report } from "./schema-serve.ts";

let nextId = 1;

class ItemsHandler extends RequestHandler {
  static override schema = { post: { body: NewItem, response: { 201: Item } } };
  post(this: Validated<typeof ItemsHandler, "post">): void {
    this.setStatus(201);
    this.write({ id: nextId++, ...this.valid.body });
  }
}

class ReportHandler extends RequestHandler {
  static override schema = { get: { response: { 200: Report } } };
  get(): void {
    this.write(REPORT);
  }
}

const server = await new Application([["/items", ItemsHandler], ["/report", ReportHandler]]).listen(0, "127.0.0.1");
process.stdout.write(`listening ${server.address()!.port}\n`);
