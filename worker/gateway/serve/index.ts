// The request path for a hostname a Gateway serves: decide (pure), then
// answer 404 / a redirect / 500 for an invalid backend, or hand the request,
// with its rule's filters applied, to the same proxy that serves LoadBalancer
// Services (node choice, failover and ejection unchanged).
import { isEdgeAnswer } from "../../edge-answer.ts";
import type { Route } from "../../config/routes.ts";
import type { Logger } from "../../log/index.ts";
import { requestIdOf } from "../../proxy/headers.ts";
import { decide, matchInput, tableForScheme, type GatewayTable } from "../index.ts";
import { applyHeaderEdits, redirectLocation, rewritePath, type HeaderEdits } from "../filters/index.ts";

export interface GatewayDeps {
  log: Logger;
  random: () => number;
}

/** originHost: the Host a URLRewrite gave the origin; the client's own stays in X-Forwarded-Host. */
export type Forward = (request: Request, route: Route, originHost?: string) => Promise<Response>;

/** A Host a Location may carry: a DNS name or an IP literal, with an optional port. */
const SAFE_HOST = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?|\[[0-9a-f:.]+\])(:\d{1,5})?$/;

function plain(status: number, message: string, requestId: string): Response {
  return new Response(`edgelb: ${message} (request ${requestId})\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff", "x-request-id": requestId },
  });
}

export async function serveGateway(request: Request, table: GatewayTable, host: string, deps: GatewayDeps, forward: Forward): Promise<Response> {
  const url = new URL(request.url);
  const decision = decide(tableForScheme(table, url.protocol), matchInput(request, url), deps.random);
  if (decision.kind === "none") {
    const requestId = requestIdOf(request);
    deps.log("info", "gateway.no_match", { requestId, host: host.slice(0, 253), hostnames: table.pattern, method: request.method, path: url.pathname.slice(0, 200) });
    return plain(404, "no route matches this request", requestId);
  }
  const { action, prefix, backend } = decision;
  const filters = action.filters;
  if (filters.redirect) {
    const hostHeader = (request.headers.get("host") ?? url.host).toLowerCase();
    if (!SAFE_HOST.test(hostHeader)) {
      const requestId = requestIdOf(request);
      deps.log("info", "gateway.bad_host", { requestId, host: JSON.stringify(hostHeader.slice(0, 253)) });
      return plain(400, "bad request: invalid Host header", requestId);
    }
    const headers = new Headers({ location: redirectLocation(filters.redirect, url, hostHeader, prefix) });
    if (filters.responseHeaders) applyHeaderEdits(headers, filters.responseHeaders);
    return new Response(null, { status: filters.redirect.statusCode, headers });
  }
  if (!backend || !backend.route) {
    // The spec: requests routed to an invalid backend (or to none) get 500.
    const requestId = requestIdOf(request);
    deps.log("warn", "gateway.invalid_backend", {
      requestId,
      host: host.slice(0, 253),
      route: action.routeId,
      cluster: action.cluster,
      rule: action.rule,
      reason: backend?.invalid ?? "the rule has no backend with weight above 0",
    });
    return plain(500, "this route has no valid backend", requestId);
  }
  const forwarded = filters.requestHeaders || filters.rewrite?.path ? rewriteRequest(request, url, prefix, filters.requestHeaders, filters.rewrite?.path) : request;
  // The rewritten hostname goes to the origin's Host only: the request keeps the client's Host, from
  // which the proxy sets X-Forwarded-Host and Forwarded (an app building links must see the public name).
  const response = await forward(forwarded, backend.route, filters.rewrite?.hostname);
  return withResponseEdits(response, filters.responseHeaders);
}

function rewriteRequest(
  request: Request,
  url: URL,
  prefix: string | undefined,
  edits: HeaderEdits | undefined,
  path: Parameters<typeof rewritePath>[0] | undefined,
): Request {
  const headers = new Headers(request.headers);
  if (edits) applyHeaderEdits(headers, edits);
  let target = request.url;
  if (path) {
    const next = new URL(url);
    next.pathname = rewritePath(path, url.pathname, prefix);
    target = next.toString();
  }
  // workerd gives a GET or HEAD with `Content-Length: 0` an empty, non-null body, which `new Request` refuses for
  // those methods (a 500). Without it, the copied Content-Length still tells the proxy what the client announced:
  // 0 is proxied, more gets its 400, as on a Service's hostname.
  const bodyless = request.method === "GET" || request.method === "HEAD";
  return new Request(target, { method: request.method, headers, body: bodyless ? null : request.body, redirect: "manual" });
}

function withResponseEdits(response: Response, edits: HeaderEdits | undefined): Response {
  // A 101 carries the WebSocket and must reach the client as is; the edge's own answers (503 no server
  // is ready, 502, 504: no-store, Retry-After) are not the app's to edit (worker/edge-answer.ts).
  if (!edits || response.status === 101 || isEdgeAnswer(response)) return response;
  try {
    applyHeaderEdits(response.headers, edits);
    return response;
  } catch {
    // Immutable headers (a Response the runtime made): copy once.
    const copy = new Response(response.body, response);
    applyHeaderEdits(copy.headers, edits);
    return copy;
  }
}
