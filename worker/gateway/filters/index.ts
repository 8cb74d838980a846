// Pure: HTTPRoute filters, compiled once per snapshot and applied per request.
// RequestHeaderModifier / ResponseHeaderModifier: set, then add, then remove,
// names case-insensitive. A modifier can never write a line break (the schema
// refuses CR/LF/NUL and the compiler drops anything that is not a valid field),
// a hop-by-hop field, or a field the edge itself vouches for (X-Forwarded-*,
// Forwarded, X-Real-IP, CF-*, Host, X-Request-Id): the origin must be able to
// trust those whatever a route says. RequestRedirect and URLRewrite follow the
// spec's defaults (see redirectLocation and rewritePath).
import { CLIENT_FORWARDING, isFieldName, isFieldValue } from "../../proxy/headers.ts";
import type { GatewayFilter, GatewayHeaderModifier, GatewayPathModifier } from "../../snapshot/gateway.ts";
import { trimPrefix } from "../match/index.ts";

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"];

/** Request fields no route may set, add or remove. */
const REQUEST_PROTECTED = new Set([...HOP_BY_HOP, ...CLIENT_FORWARDING, "host", "x-request-id", "content-length"]);
/** Response fields no route may set, add or remove (framing and encoding belong to the relay). */
const RESPONSE_PROTECTED = new Set([...HOP_BY_HOP, "content-length", "content-encoding", "x-request-id"]);

export function isProtectedRequestHeader(name: string): boolean {
  const n = name.toLowerCase();
  // CF-Connecting-IP is where the edge learns the client's address: no route may forge it.
  return REQUEST_PROTECTED.has(n) || n.startsWith("cf-");
}

export function isProtectedResponseHeader(name: string): boolean {
  return RESPONSE_PROTECTED.has(name.toLowerCase());
}

export interface HeaderEdits {
  set: [string, string][];
  add: [string, string][];
  remove: string[];
}

export interface RuleFilters {
  requestHeaders: HeaderEdits | undefined;
  responseHeaders: HeaderEdits | undefined;
  redirect: Extract<GatewayFilter, { type: "RequestRedirect" }>["requestRedirect"] | undefined;
  rewrite: Extract<GatewayFilter, { type: "URLRewrite" }>["urlRewrite"] | undefined;
  /** Entries dropped at compile time, said once per snapshot in the log. */
  ignored: string[];
}

/** What a route may write into a field value: visible ASCII, space and tab (no line break, no byte a writer could mangle). */
const ROUTE_VALUE = /^[\t\x20-\x7e]*$/;

function compileEdits(m: GatewayHeaderModifier, isProtected: (name: string) => boolean, where: string, ignored: string[]): HeaderEdits {
  const ok = (name: string, value = "") => {
    if (!isFieldName(name) || !isFieldValue(value) || !ROUTE_VALUE.test(value)) {
      ignored.push(`${where}: invalid header ${JSON.stringify(name)}`);
      return false;
    }
    if (isProtected(name)) {
      ignored.push(`${where}: header ${name.toLowerCase()} is set by the edge and cannot be changed by a route`);
      return false;
    }
    return true;
  };
  return {
    set: m.set.filter((p) => ok(p.name, p.value)).map((p) => [p.name.toLowerCase(), p.value]),
    add: m.add.filter((p) => ok(p.name, p.value)).map((p) => [p.name.toLowerCase(), p.value]),
    remove: m.remove.filter((n) => ok(n)).map((n) => n.toLowerCase()),
  };
}

/** The filters of a rule without any (most rules): shared, never mutated. */
const NO_FILTERS: RuleFilters = Object.freeze({ requestHeaders: undefined, responseHeaders: undefined, redirect: undefined, rewrite: undefined, ignored: [] });

export function compileFilters(filters: GatewayFilter[]): RuleFilters {
  if (filters.length === 0) return NO_FILTERS;
  const out: RuleFilters = { requestHeaders: undefined, responseHeaders: undefined, redirect: undefined, rewrite: undefined, ignored: [] };
  for (const f of filters) {
    switch (f.type) {
      case "RequestHeaderModifier":
        out.requestHeaders = compileEdits(f.requestHeaderModifier, isProtectedRequestHeader, "RequestHeaderModifier", out.ignored);
        break;
      case "ResponseHeaderModifier":
        out.responseHeaders = compileEdits(f.responseHeaderModifier, isProtectedResponseHeader, "ResponseHeaderModifier", out.ignored);
        break;
      case "RequestRedirect":
        out.redirect = f.requestRedirect;
        break;
      case "URLRewrite":
        out.rewrite = f.urlRewrite;
        break;
    }
  }
  return out;
}

/** Applies edits in place: set replaces every value, add appends one, remove deletes. */
export function applyHeaderEdits(headers: Headers, edits: HeaderEdits): void {
  for (const [name, value] of edits.set) headers.set(name, value);
  for (const [name, value] of edits.add) headers.append(name, value);
  for (const name of edits.remove) headers.delete(name);
}

/**
 * The new path for a path modifier. ReplaceFullPath replaces the whole path;
 * ReplacePrefixMatch replaces the matched prefix element-wise ("/prefix/one"
 * → "/one": "/prefix/one/two" becomes "/one/two"; with "/" it becomes "/two",
 * and the bare prefix becomes "/"). prefix: the PathPrefix that matched
 * (undefined: the whole path matched, as with Exact).
 */
export function rewritePath(modifier: GatewayPathModifier, path: string, prefix: string | undefined): string {
  if (modifier.type === "ReplaceFullPath") return modifier.replaceFullPath;
  const matched = prefix === undefined ? path : trimPrefix(prefix);
  const rest = path.slice(matched.length);
  const result = trimPrefix(modifier.replacePrefixMatch) + rest;
  return result === "" ? "/" : result.startsWith("/") ? result : `/${result}`;
}

const WELL_KNOWN: Record<string, number> = { http: 80, https: 443 };

/**
 * The Location of a RequestRedirect. Scheme: the filter's, else the request's.
 * Hostname: the filter's, else the request's Host. Port: the filter's; else,
 * when the filter sets a scheme, that scheme's well-known port; else the port
 * the client used (the edge's listener). A scheme's well-known port is left
 * out. Path: the path modifier applied, else the request's; the query stays.
 */
export function redirectLocation(
  redirect: NonNullable<RuleFilters["redirect"]>,
  url: URL,
  host: string,
  prefix: string | undefined,
): string {
  const requestScheme = url.protocol.slice(0, -1);
  const scheme = redirect.scheme ?? requestScheme;
  const { name, port: hostPort } = splitHost(host);
  const hostname = redirect.hostname ?? name;
  const port = redirect.port ?? (redirect.scheme ? WELL_KNOWN[redirect.scheme]! : (hostPort ?? WELL_KNOWN[requestScheme] ?? 80));
  const path = redirect.path ? rewritePath(redirect.path, url.pathname, prefix) : url.pathname;
  const authority = port === WELL_KNOWN[scheme] ? hostname : `${hostname}:${port}`;
  return `${scheme}://${authority}${path}${url.search}`;
}

/** "example.com:8080" → name and port; "[::1]:80" keeps its brackets. */
export function splitHost(host: string): { name: string; port: number | undefined } {
  const h = host.trim().toLowerCase();
  const colon = h.lastIndexOf(":");
  if (colon > h.lastIndexOf("]")) {
    const port = Number(h.slice(colon + 1));
    const name = h.slice(0, colon);
    return { name, port: Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined };
  }
  return { name: h, port: undefined };
}
