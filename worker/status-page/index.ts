// The status page at /__edgelb/: what a person wants to see during an
// incident (clusters with generation and age, each Service with its hostnames
// and nodes: agent health, edge ejection, weights), refreshed live. The page and
// its script load without a token; the data comes from GET /__edgelb/v1/status,
// which needs a token that can read. The edge serves it only on control
// hostnames (never on an app's), so no app script can read the token the page
// keeps in sessionStorage. Mount it under /__edgelb before the control app.
import { Hono } from "hono";
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from "./assets.ts";

// Only our own script, stylesheet and status calls; never framed; no referrer.
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const COMMON = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

function asset(body: string, type: string, extra: Record<string, string> = {}): Response {
  return new Response(body, { headers: { "content-type": type, ...COMMON, ...extra } });
}

const PAGE = "/__edgelb/";

/**
 * Serves /__edgelb/ (the page; /__edgelb redirects there), /__edgelb/status.js
 * and /__edgelb/status.css; every other path falls through to the next routes.
 * Mount with `app.route("/__edgelb", statusPage())` before the control app.
 */
export function statusPage(): Hono {
  const app = new Hono();
  app.use("*", async (c, next) => {
    if (c.req.method !== "GET" && c.req.method !== "HEAD") return next();
    const path = new URL(c.req.url).pathname;
    if (path === PAGE) return asset(PAGE_HTML, "text/html; charset=utf-8", { "content-security-policy": CSP, "x-frame-options": "DENY" });
    if (path === "/__edgelb") return c.redirect(PAGE, 301);
    if (path === `${PAGE}status.js`) return asset(PAGE_JS, "text/javascript; charset=utf-8");
    if (path === `${PAGE}status.css`) return asset(PAGE_CSS, "text/css; charset=utf-8");
    return next();
  });
  return app;
}
