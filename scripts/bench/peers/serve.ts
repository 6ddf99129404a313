/**
 * What every benchmark peer shares: the scenarios it can serve, the 500-route table, and how it
 * announces itself. A peer script runs as its own process (`node --import tsx peers/<name>.ts
 * <scenario>`), listens on an unused loopback port and prints `listening <port>` for the harness.
 */
import type { AddressInfo, Server } from "node:net";

/** The workloads a peer may serve; each peer says which it supports. */
export type Scenario = "hello" | "json" | "plaintext" | "group" | "routes" | "prefixed";

/** The text every hello-world server answers. */
export const HELLO = "Hello, world";

/** The object every JSON server answers at `/json` (TechEmpower's JSON test). */
export const JSON_BODY = { message: "Hello, World!" };

/** The `text/plain` body every server answers at `/plaintext` (TechEmpower's plaintext test, loaded pipelined). */
export const PLAINTEXT = "Hello, World!";

/** Requests in flight per connection on `/plaintext`, as TechEmpower loads it. */
export const PLAINTEXT_PIPELINING = 16;

/** How many rules the route-table scenario registers. */
export const ROUTE_COUNT = 500;

/**
 * The route table: rule `i` serves `<base>/resource<i>/(\d+)` (typhoon) or `<base>/resource<i>/:id`
 * (Fastify). With no base, each rule has its own first path segment, as in a REST API; the
 * `prefixed` scenario puts all of them under `/api`, as many apps do.
 */
export function routeTable(base = ""): string[] {
  return Array.from({ length: ROUTE_COUNT }, (_, i) => `${base}/resource${i}`);
}

/** The base path of the `prefixed` scenario's table. */
export const PREFIX = "/api";

/** The request path that hits the first rule of a table, and the one that hits the last. */
export function firstRulePath(base = ""): string {
  return `${base}/resource0/42`;
}
export function lastRulePath(base = ""): string {
  return `${base}/resource${ROUTE_COUNT - 1}/42`;
}

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
