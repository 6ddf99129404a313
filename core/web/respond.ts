/**
 * The one place that writes status, headers and body to the socket (Koa's `respond()`), and the
 * rules that belong with it: header validation, bodyless statuses, the default error page and
 * its content negotiation, ETags.
 */
import type { ServerResponse } from "node:http";
import { isBodyless, type Body, type HeaderMap } from "../http/headers.ts";
import { errorPage } from "../http/error-page.ts";

/** Writes the status line and headers; the body follows with `res.write`/`res.end`. */
export function sendHead(res: ServerResponse, status: number, reason: string | undefined, headers: HeaderMap): void {
  if (reason === undefined) res.writeHead(status, headers);
  else res.writeHead(status, reason, headers);
}

/** Writes a whole response. HEAD and bodyless statuses send no body (Node drops it for HEAD). */
export function sendWhole(res: ServerResponse, status: number, reason: string | undefined, headers: HeaderMap, body: Body | null): void {
  sendHead(res, status, reason, headers);
  if (body === null || isBodyless(status)) res.end();
  else res.end(body);
}

/**
 * Answers a request with an error page before any handler exists (no route, bad path, overload).
 */
export function sendErrorPage(res: ServerResponse, status: number, accept: string | undefined, extra?: HeaderMap, close = false): void {
  const page = errorPage(status, undefined, accept);
  const headers: HeaderMap = { ...extra, "content-type": page.contentType, "content-length": String(Buffer.byteLength(page.body)) };
  if (close) headers["connection"] = "close";
  sendWhole(res, status, undefined, headers, page.body);
}
