/**
 * The default error page (Tornado's: `<html><title>404: Not Found</title>...`), or JSON when the
 * request's `Accept` prefers it; HTML escaping. Pure: the writer sends what this builds.
 */
import { reasonPhrase } from "../errors.ts";

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}
const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** The quality an `Accept` header gives a media type (exact, `type/*`, `*\/*`); 0 when absent. */
function quality(accept: string, type: string): number {
  const [major] = type.split("/");
  let best = -1;
  let bestSpecificity = -1;
  for (const entry of accept.split(",")) {
    const [range, ...params] = entry.trim().toLowerCase().split(";");
    const specificity = range === type ? 2 : range === `${major}/*` ? 1 : range === "*/*" ? 0 : -1;
    if (specificity < bestSpecificity || specificity === -1) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.trim().split("=");
      if (k === "q" && v !== undefined) q = Number(v) || 0;
    }
    best = q;
    bestSpecificity = specificity;
  }
  return best < 0 ? 0 : best;
}

/** Whether an `Accept` header prefers JSON over HTML (ties go to HTML). */
export function prefersJson(accept: string | undefined): boolean {
  // Only JSON or a wildcard range (`application/*`, `*/*`) can rank JSON first.
  if (accept === undefined || (!accept.includes("json") && !accept.includes("/*"))) return false;
  return quality(accept, "application/json") > quality(accept, "text/html");
}

/** The default error page: HTML, or JSON when the client prefers it. */
export function errorPage(status: number, reason: string | undefined, accept: string | undefined, trace?: string): { body: string; contentType: string } {
  const phrase = reason ?? reasonPhrase(status);
  if (prefersJson(accept)) {
    const payload: Record<string, unknown> = { status, reason: phrase };
    if (trace !== undefined) payload["traceback"] = trace;
    return { body: JSON.stringify(payload), contentType: "application/json; charset=UTF-8" };
  }
  const title = escapeHtml(`${status}: ${phrase}`);
  const body = trace !== undefined ? `<pre>${escapeHtml(trace)}</pre>` : title;
  return { body: `<html><title>${title}</title><body>${body}</body></html>`, contentType: "text/html; charset=UTF-8" };
}
