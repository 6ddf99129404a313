/**
 * Benchmark subject: typhoon with default settings (ETag on, as users get it), served by
 * `HTTPServer.listen` in one process.
 */
import { Application, RequestHandler, type Rule } from "../../../core/index.ts";
import { HELLO, JSON_BODY, PLAINTEXT, PREFIX, routeTable, scenarioArg } from "./serve.ts";

class HelloHandler extends RequestHandler {
  get(): void {
    this.write(HELLO);
  }
}

class JsonHandler extends RequestHandler {
  get(): void {
    this.write(JSON_BODY);
  }
}

class PlaintextHandler extends RequestHandler {
  get(): void {
    this.setHeader("Content-Type", "text/plain");
    this.write(PLAINTEXT);
  }
}

class UserHandler extends RequestHandler {
  get(id: string): void {
    this.write(`user ${id}`);
  }
}

class ResourceHandler extends RequestHandler {
  get(id: string): void {
    this.write(`item ${id}`);
  }
}

const scenario = scenarioArg(["hello", "json", "plaintext", "group", "routes", "prefixed"]);
const rules: Rule[] = scenario === "hello" ? [["/", HelloHandler]]
  : scenario === "json" ? [["/json", JsonHandler]]
  : scenario === "plaintext" ? [["/plaintext", PlaintextHandler]]
  : scenario === "group" ? [["/users/(\\d+)", UserHandler]]
  : routeTable(scenario === "prefixed" ? PREFIX : "").map((prefix): Rule => [`${prefix}/(\\d+)`, ResourceHandler]);

// The access log off, as Fastify's peer runs with its logger off (scripts/bench/ops.ts measures it).
const server = await new Application(rules, { accessLog: false }).listen(0, "127.0.0.1");
process.stdout.write(`listening ${server.address()!.port}\n`);
