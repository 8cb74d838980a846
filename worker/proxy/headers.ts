// Header rewriting between client and origin. Forwarding headers are set from
// what the edge itself knows and never taken from the client.

/** RFC 9110 §7.6.1 connection-specific fields, plus the old proxy ones. */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authenticate",
  "proxy-authorization",
];

/** Client-supplied values the edge must not pass on as if it had set them. */
const FORWARDING = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "forwarded"];

/** Removes hop-by-hop fields, including those the Connection field names. */
export function stripHopByHop(headers: Headers, keepUpgrade = false): Headers {
  const named = (headers.get("connection") ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const name of [...HOP_BY_HOP, ...named]) {
    if (keepUpgrade && (name === "upgrade" || name === "connection")) continue;
    headers.delete(name);
  }
  return headers;
}

export function isWebSocketRequest(request: Request): boolean {
  return (request.headers.get("upgrade") ?? "").toLowerCase().split(",").some((s) => s.trim() === "websocket");
}

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

/** The client's X-Request-Id when it is a sane token, else a new UUID. */
export function requestIdOf(request: Request): string {
  const given = request.headers.get("x-request-id");
  return given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

export interface EdgeFacts {
  /** CF-Connecting-IP: set by Cloudflare, the only client address the edge trusts. */
  clientIp: string | undefined;
  /** "https" or "http", from the URL the edge received. */
  proto: string;
  /** The Host the client asked for, as sent. */
  host: string;
  requestId: string;
}

export function edgeFacts(request: Request, requestId: string): EdgeFacts {
  const url = new URL(request.url);
  return {
    clientIp: request.headers.get("cf-connecting-ip")?.trim() || undefined,
    proto: url.protocol.replace(":", ""),
    host: request.headers.get("host") ?? url.host,
    requestId,
  };
}

/** The headers an origin receives. The original Host is kept. */
export function originRequestHeaders(request: Request, facts: EdgeFacts, websocket: boolean): Headers {
  const headers = stripHopByHop(new Headers(request.headers), websocket);
  if (websocket) {
    headers.set("upgrade", "websocket");
    headers.set("connection", "Upgrade");
  }
  for (const name of FORWARDING) headers.delete(name);
  headers.set("host", facts.host);
  if (facts.clientIp) {
    headers.set("x-forwarded-for", facts.clientIp);
    headers.set("x-real-ip", facts.clientIp);
  }
  headers.set("x-forwarded-proto", facts.proto);
  headers.set("x-forwarded-host", facts.host);
  headers.set("x-request-id", facts.requestId);
  return headers;
}

/** The headers the client receives from an origin's response. */
export function clientResponseHeaders(response: Response, requestId: string): Headers {
  const headers = stripHopByHop(new Headers(response.headers));
  if (!headers.has("x-request-id")) headers.set("x-request-id", requestId);
  return headers;
}
