/**
 * What every benchmark peer shares: the scenarios it can serve, the 500-route table, and how it
 * announces itself. A peer script runs as its own process (`node --import tsx peers/<name>.ts
 * <scenario>`), listens on an unused loopback port and prints `listening <port>` for the harness.
 */
import type { AddressInfo, Server } from "node:net";

/** The workloads a peer may serve; each peer says which it supports. */
export type Scenario = "hello" | "json" | "group" | "routes";

/** The text every hello-world server answers. */
export const HELLO = "Hello, world";

/** The object every JSON server answers. */
export const JSON_BODY = { message: "Hello, world" };

/** How many rules the route-table scenario registers. */
export const ROUTE_COUNT = 500;

/**
 * The route table, as `[prefix, index]`: rule `i` serves `<prefix>/(\d+)` (typhoon) or
 * `<prefix>/:id` (Fastify). The prefixes are distinct resources, as in a REST API.
 */
export function routeTable(): string[] {
  return Array.from({ length: ROUTE_COUNT }, (_, i) => `/resource${i}`);
}

/** The request path that hits the first rule of the table, and the one that hits the last. */
export const FIRST_RULE_PATH = "/resource0/42";
export const LAST_RULE_PATH = `/resource${ROUTE_COUNT - 1}/42`;

/**
 * The scenario named by the command line (`<script> <scenario>`) or, for tools that run the
 * script without arguments (`APP=... make flame`), by `SCENARIO`; exits on an unknown one.
 */
export function scenarioArg(supported: readonly Scenario[]): Scenario {
  const name = (process.argv[2] ?? process.env["SCENARIO"]) as Scenario | undefined;
  if (name === undefined || !supported.includes(name)) {
    console.error(`usage: <peer> <scenario>; this peer serves ${supported.join(", ")}`);
    process.exit(2);
  }
  return name;
}

/** Prints the port a listening node server was given, the line the harness waits for. */
export function announce(server: Pick<Server, "address">): void {
  const address = server.address() as AddressInfo;
  process.stdout.write(`listening ${address.port}\n`);
}
