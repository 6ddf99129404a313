/**
 * Schema benchmark subject: typhoon with `static schema` (Ajv validation, fast-json-stringify
 * serialization), served by `HTTPServer.listen` in one process.
 */
import { Application, RequestHandler, type Validated } from "../../../core/index.ts";
import { Item, NewItem, REPORT, REPORT_PLAIN, Report } from "./schema-serve.ts";

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

// The same document through JSON.stringify: what the schema's serializer is measured against.
class PlainReportHandler extends RequestHandler {
  get(): void {
    this.write(REPORT_PLAIN);
  }
}

const rules = [["/items", ItemsHandler], ["/report", ReportHandler], ["/report-plain", PlainReportHandler]] as const;
const server = await new Application(rules, { accessLog: false }).listen(0, "127.0.0.1"); // as Fastify's logger is off
process.stdout.write(`listening ${server.address()!.port}\n`);
