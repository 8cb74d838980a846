// Header rewriting between client and origin, in one pass over the client's
// fields: each name and value is checked (the request guard), connection-
// specific and client-supplied forwarding fields are dropped, the rest is
// copied. Forwarding headers are then set from what the edge itself knows and
// never taken from the client.

import { GATE_REFUSED_HEADER, SIGNATURE_HEADER } from "../snapshot/signing.ts";
import { isHttps } from "../transport/target/index.ts";

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

/**
 * Forwarding fields a client may forge and an app may trust (rate limits,
 * audit logs, "is this https?"). The edge sets its own X-Forwarded-For/-Proto/
 * -Host, X-Real-IP and Forwarded; every other one is dropped.
 */
export const CLIENT_FORWARDING = [
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-prefix",
  "x-forwarded-server",
  "x-forwarded-ssl",
  "x-forwarded-scheme",
  "x-real-ip",
  "true-client-ip",
  "x-client-ip",
  "x-original-url",
  "x-original-forwarded-for",
];

/** Fields the origin request never copies from the client: the edge sets them itself or drops them. */
// x-edgelb-test-cf: the local lab's stand-in for request.cf is the edge's input, never the app's.
// The gate signature: only the edge signs (rv-proxy s6 #2); a client's own must not reach a direct-mode NodePort.
const NOT_COPIED = new Set([...HOP_BY_HOP, ...CLIENT_FORWARDING, "host", "x-request-id", "x-edgelb-test-cf", SIGNATURE_HEADER]);

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

export function isWebSocketRequest(request: Pick<Request, "headers">): boolean {
  return (request.headers.get("upgrade") ?? "").toLowerCase().split(",").some((s) => s.trim() === "websocket");
}

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

/** The client's X-Request-Id when it is a sane token, else a new id from this isolate (newRequestId). */
export function requestIdOf(request: Pick<Request, "headers">): string {
  const given = request.headers.get("x-request-id");
  return given && REQUEST_ID.test(given) ? given : newRequestId();
}

let isolatePrefix: string | undefined;
let issued = 0;

/**
 * A unique request id without a UUID per request: 64 random bits drawn once
 * per isolate (lazily: workerd allows no randomness at start-up) and a
 * counter. Unique across isolates with the same odds as two random 64-bit
 * numbers colliding; not secret, and not meant to be.
 */
export function newRequestId(): string {
  if (isolatePrefix === undefined) {
    const r = crypto.getRandomValues(new Uint32Array(2));
    isolatePrefix = r[0]!.toString(16).padStart(8, "0") + r[1]!.toString(16).padStart(8, "0");
  }
  return `${isolatePrefix}-${(++issued).toString(36)}`;
}

export interface EdgeFacts {
  /** CF-Connecting-IP: set by Cloudflare, the only client address the edge trusts. */
  clientIp: string | undefined;
  /** "https" or "http", from the URL the edge received. */
  proto: string;
  /** The Host the client asked for, as sent. */
  host: string;
  /** The Host the origin gets when a route rewrote it (URLRewrite hostname); forwarding fields keep `host`. */
  originHost?: string;
  requestId: string;
}

export function edgeFacts(request: Pick<Request, "headers" | "url">, requestId: string, url?: URL, originHost?: string): EdgeFacts {
  const facts: EdgeFacts = {
    clientIp: request.headers.get("cf-connecting-ip")?.trim() || undefined,
    // The runtime serialized request.url: its scheme is read without a URL parse.
    proto: url ? url.protocol.replace(":", "") : isHttps(request.url) ? "https" : "http",
    host: request.headers.get("host") ?? (url ?? new URL(request.url)).host,
    requestId,
  };
  // Set only when given (no object spread per request).
  if (originHost !== undefined) facts.originHost = originHost;
  return facts;
}

/** A Connection field that names only Keep-Alive (a hop-by-hop field, never passed on either way). */
const KEEP_ALIVE_ONLY = /^[\t ]*keep-alive[\t ]*$/i;

/** RFC 9110 §5.6.2 token: what a field name must be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * Control characters a field value must not hold (RFC 9110 §5.5): 0x00–0x1F
 * except HTAB, and DEL. Checked on code points after workerd's UTF-8 decoding,
 * so U+010D U+010A (which a Latin-1 writer would turn into CR LF) passes here
 * and is the writer's business; a real CR, LF or NUL never does.
 */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

export function isFieldName(name: string): boolean {
  return TOKEN.test(name);
}

export function isFieldValue(value: string): boolean {
  return !CONTROL.test(value);
}

/** Why the request guard refused a request: said to the client (its own header), logged in full. */
export interface HeaderFault {
  fault: string;
  /** The offending name, for the log line (JSON-escaped there). */
  name: string;
}

/**
 * The headers an origin receives, or why the request must be refused (originFields as a Headers
 * object). The original Host is kept.
 */
export function originRequestHeaders(request: Pick<Request, "headers">, facts: EdgeFacts, websocket: boolean, forwarded = false): Headers | HeaderFault {
  const fields = originFields(request, facts, websocket, forwarded);
  return isHeaderFault(fields) ? fields : originHeadersOf(fields);
}

/** The origin's fields as a plain record: fetch() takes it as is, anything else gets a Headers (originHeadersOf). */
export type OriginFields = Record<string, string>;

/**
 * What the edge reads of the client's fields, gathered in the one pass that also copies them: no
 * runtime call per field it looks at (a Headers.get each cost about as much as copying a field).
 * Values are as Headers.get returns them (repeated fields joined).
 */
export interface ClientFields {
  /** The client's fields an origin may get (NOT_COPIED left out; those its Connection names still in). */
  copied: OriginFields;
  /** Why the request guard refuses the request, if it does. */
  fault: HeaderFault | undefined;
  host: string | null;
  requestId: string | null;
  /** CF-Connecting-IP. */
  clientIp: string | null;
  upgrade: string | null;
  connection: string | null;
  contentLength: string | null;
  transferEncoding: boolean;
  /** How many fields went into `copied`. */
  copiedCount: number;
  /**
   * Fields present that are never copied (NOT_COPIED), for originHeadersFromClient's deletes (it skips those the
   * edge then sets); Host and X-Request-Id are left out: the edge keeps the client's only when it is its own
   * value, else sets its own. Undefined when none.
   */
  dropped: string[] | undefined;
}

/** Sets a record's field; "__proto__" (a valid field name) as an own property, never the prototype. */
function put(fields: OriginFields, name: string, value: string): void {
  if (name === "__proto__") Object.defineProperty(fields, name, { value, enumerable: true, writable: true, configurable: true });
  else fields[name] = value;
}

/** One pass over the client's fields: each name and value checked (the request guard), copied or read. */
export function readClientFields(headers: Headers): ClientFields {
  const read: ClientFields = {
    copied: {},
    fault: undefined,
    host: null,
    requestId: null,
    clientIp: null,
    upgrade: null,
    connection: null,
    contentLength: null,
    transferEncoding: false,
    copiedCount: 0,
    dropped: undefined,
  };
  const copied = read.copied;
  for (const [name, value] of headers) {
    if (!isFieldName(name)) {
      read.fault ??= { fault: "a header name is not a valid token", name };
      continue;
    }
    if (!isFieldValue(value)) {
      read.fault ??= { fault: `header ${name} holds a control character`, name };
      continue;
    }
    switch (name) {
      case "host":
        read.host = value;
        continue;
      case "x-request-id":
        read.requestId = value;
        continue;
      case "cf-connecting-ip":
        read.clientIp = value;
        break;
      case "upgrade":
        read.upgrade = value;
        (read.dropped ??= []).push(name);
        continue;
      case "connection":
        read.connection = value;
        (read.dropped ??= []).push(name);
        continue;
      case "content-length":
        read.contentLength = value;
        break;
      case "transfer-encoding":
        read.transferEncoding = true;
        (read.dropped ??= []).push(name);
        continue;
    }
    if (NOT_COPIED.has(name)) {
      (read.dropped ??= []).push(name);
      continue;
    }
    // Only Set-Cookie comes repeated from the runtime's iteration.
    if (name === "set-cookie" && copied[name] !== undefined) copied[name] += `, ${value}`;
    else {
      put(copied, name, value);
      read.copiedCount++;
    }
  }
  return read;
}

/** The client's X-Request-Id when it is a sane token, else a new one (requestIdOf, from a pass's read). */
export function requestIdFrom(read: ClientFields): string {
  const given = read.requestId;
  return given && REQUEST_ID.test(given) ? given : newRequestId();
}

/** edgeFacts from a pass's read: the same facts without reading a field again. */
export function edgeFactsFrom(read: ClientFields, url: string, requestId: string, originHost?: string): EdgeFacts {
  const facts: EdgeFacts = {
    clientIp: read.clientIp?.trim() || undefined,
    proto: isHttps(url) ? "https" : "http",
    host: read.host ?? new URL(url).host,
    requestId,
  };
  if (originHost !== undefined) facts.originHost = originHost;
  return facts;
}

/** isWebSocketRequest from a pass's read. */
export function isWebSocketFrom(read: ClientFields): boolean {
  // Most requests have no Upgrade: no string, array and closure for them.
  return read.upgrade !== null && read.upgrade.toLowerCase().split(",").some((s) => s.trim() === "websocket");
}

/** A GET or HEAD that announces a body (a length above zero, or any Transfer-Encoding), from a pass's read. */
export function announcesBody(read: ClientFields): boolean {
  return (read.contentLength !== null && read.contentLength.trim() !== "0") || read.transferEncoding;
}

/**
 * The fields an origin receives, as a plain record, or why the request must be refused. One pass
 * over the client's fields (readClientFields): each name and value is checked (the request guard),
 * connection-specific and client-supplied forwarding fields are dropped, the rest copied; the
 * forwarding fields are then set from what the edge knows. A record because fetch() converts one
 * in a single call, while a Headers object costs a runtime call per field to build and is then
 * copied by fetch() once more. Names are unique (the runtime's iteration joins repeated fields),
 * so a record loses nothing; the one field it hands over repeated (Set-Cookie, which no request
 * should carry) is joined as Headers.get would.
 */
export function originFields(request: Pick<Request, "headers">, facts: EdgeFacts, websocket: boolean, forwarded = false): OriginFields | HeaderFault {
  return originFieldsFrom(readClientFields(request.headers), facts, websocket, forwarded);
}

/**
 * originFields from a pass's read: the copied fields (less those the client's Connection names) and the
 * edge's own. `forwarded`: also RFC 7239 Forwarded (EDGELB_FORWARDED), which repeats X-Forwarded-For,
 * -Host and -Proto; off by default, as in Envoy, nginx and Traefik: one more field for fetch() to
 * convert costs ~10 k instructions per request.
 */
export function originFieldsFrom(read: ClientFields, facts: EdgeFacts, websocket: boolean, forwarded = false): OriginFields | HeaderFault {
  if (read.fault) return read.fault;
  let fields = read.copied;
  // "Connection: keep-alive" (what most HTTP/1.1 clients send) names a field never copied: no split per request.
  if (read.connection !== null && !KEEP_ALIVE_ONLY.test(read.connection)) {
    // Fields the client's Connection header names are its hop's, not the origin's. Rare beyond the
    // hop-by-hop names left out anyway: then the record is made again without them.
    const named = read.connection
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter((name) => name !== "" && Object.hasOwn(fields, name));
    if (named.length > 0) {
      const kept: OriginFields = {};
      for (const name of Object.keys(fields)) if (!named.includes(name)) put(kept, name, fields[name]!);
      fields = kept;
    }
  }
  // None of these was copied (NOT_COPIED).
  if (websocket) {
    fields.upgrade = "websocket";
    fields.connection = "Upgrade";
  }
  fields.host = facts.originHost ?? facts.host;
  if (facts.clientIp) {
    fields["x-forwarded-for"] = facts.clientIp;
    fields["x-real-ip"] = facts.clientIp;
  }
  fields["x-forwarded-proto"] = facts.proto;
  fields["x-forwarded-host"] = facts.host;
  if (forwarded) fields.forwarded = forwardedValue(facts);
  fields["x-request-id"] = facts.requestId;
  return fields;
}

/** A Headers object holding `fields` (for transports that read fields one by one: sockets, the gate). */
export function originHeadersOf(fields: OriginFields): Headers {
  const headers = new Headers();
  // Appends: a runtime call each, about half of what one conversion of the record costs per field.
  for (const name in fields) headers.append(name, fields[name]!);
  return headers;
}

/**
 * Whether fetch() gets the origin's fields as a copy of the client's Headers (originHeadersFromClient)
 * rather than as the record. Counted under callgrind in workerd (session 16): fetch() converts a record
 * at ~4.7 k instructions a field, while a copy of the client's Headers costs ~1.2 k a field, plus ~3.7 k
 * for each field the edge sets and ~2 k for each it deletes. With a request of Host alone (a load
 * generator's) the record is ~6 k cheaper; with a browser's nineteen fields through Cloudflare
 * (npm run bench:instructions -- --browser) the copy saved ~31 k of edgelb's ~715 k (47 k with garbage
 * collection). The copy wins from about two copied fields, one more for each delete it needs. Pure.
 */
export function copyClientHeaders(read: ClientFields, forwarded = false): boolean {
  // A repeated Set-Cookie (nonsense in a request) is one joined line in the record, several in a copy: the
  // record keeps the two ways identical on the wire.
  if (Object.hasOwn(read.copied, "set-cookie")) return false;
  const clientIp = read.clientIp?.trim() || undefined;
  let deletes = 0;
  if (read.dropped) for (const name of read.dropped) if (!setByEdge(name, clientIp, forwarded)) deletes++;
  return read.copiedCount >= 2 + deletes;
}

/**
 * Whether the edge sets this never-copied field on the origin request itself (originFieldsFrom's own fields
 * but Host and X-Request-Id), so that a copy of the client's Headers replaces the client's value with a set
 * and needs no delete first.
 */
function setByEdge(name: string, clientIp: string | undefined, forwarded: boolean): boolean {
  switch (name) {
    case "x-forwarded-proto":
    case "x-forwarded-host":
      return true;
    case "x-forwarded-for":
    case "x-real-ip":
      return clientIp !== undefined;
    case "forwarded":
      return forwarded;
  }
  return false;
}

/**
 * originFieldsFrom as a Headers object copied from the client's own (`clientHeaders`, the Headers the pass
 * `read` came from), for fetch(): the runtime copies the fields in C++, and only the edge's edits are calls
 * from JavaScript. The same fields as the record, with the same values (repeated fields come joined from the
 * runtime's iteration into the record; only Set-Cookie would go out apart, and copyClientHeaders keeps such a
 * request on the record). For a request without Upgrade and without a fault (the lean path). Not pure: builds
 * a Headers.
 */
export function originHeadersFromClient(clientHeaders: Headers, read: ClientFields, facts: EdgeFacts, forwarded = false): Headers {
  const headers = new Headers(clientHeaders);
  const clientIp = facts.clientIp;
  if (read.dropped) {
    for (const name of read.dropped) {
      // Set below: the set replaces the client's value.
      if (!setByEdge(name, clientIp, forwarded)) headers.delete(name);
    }
  }
  if (read.connection !== null && !KEEP_ALIVE_ONLY.test(read.connection)) {
    for (const token of read.connection.split(",")) {
      const name = token.trim().toLowerCase();
      // Only fields the record would have copied (every valid name outside NOT_COPIED): a dropped one is gone
      // already, and one the edge sets is set below.
      if (isFieldName(name) && !NOT_COPIED.has(name)) headers.delete(name);
    }
  }
  const host = facts.originHost ?? facts.host;
  if (host !== read.host) headers.set("host", host);
  if (clientIp) {
    headers.set("x-forwarded-for", clientIp);
    headers.set("x-real-ip", clientIp);
  }
  headers.set("x-forwarded-proto", facts.proto);
  headers.set("x-forwarded-host", facts.host);
  if (forwarded) headers.set("forwarded", forwardedValue(facts));
  if (facts.requestId !== read.requestId) headers.set("x-request-id", facts.requestId);
  return headers;
}

/** originFields refused the request (a fields record always holds Host). */
export function isHeaderFault(x: OriginFields | HeaderFault): x is HeaderFault {
  return !Object.hasOwn(x, "host");
}

/** The last host and proto's "host=…;proto=…" (one hostname takes most of an isolate's requests). */
let lastHostProto = { host: "", proto: "", value: "" };

/** RFC 7239 Forwarded element from the edge's facts: for (when known), host, proto. */
export function forwardedValue(facts: Pick<EdgeFacts, "clientIp" | "host" | "proto">): string {
  let hostProto = lastHostProto;
  if (hostProto.host !== facts.host || hostProto.proto !== facts.proto || hostProto.value === "") {
    hostProto = lastHostProto = { host: facts.host, proto: facts.proto, value: `host=${forwardedToken(facts.host)};proto=${forwardedToken(facts.proto)}` };
  }
  if (!facts.clientIp) return hostProto.value;
  // An IPv6 node name is "[addr]" and must be quoted (":" is not a token character).
  const ip = facts.clientIp;
  return `for=${ip.includes(":") ? quoted(`[${ip}]`) : forwardedToken(ip)};${hostProto.value}`;
}

function forwardedToken(value: string): string {
  return TOKEN.test(value) ? value : quoted(value);
}

function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * Response fields the runtime's HTTP layer writes itself (workerd's kj-http: connection-level
 * fields): it never puts a Response's own Connection, Keep-Alive, TE, Trailer, Upgrade or (except
 * in answer to a HEAD) Transfer-Encoding on the wire, so deleting them here would cost a runtime
 * call each for nothing. test/worker/wire.test.ts shows what the client receives.
 */
const WRITTEN_BY_RUNTIME = new Set(["connection", "keep-alive", "te", "trailer", "upgrade", "transfer-encoding"]);
/** Hop-by-hop fields the runtime would pass on, and the gate's marker (between gate and edge). */
const NOT_FOR_CLIENT = [
  ...HOP_BY_HOP.filter((name) => !WRITTEN_BY_RUNTIME.has(name)),
  GATE_REFUSED_HEADER,
];

/**
 * What the client's copy of an origin's response fields needs, read from the origin's own
 * (immutable) fields: the fields to take out (hop-by-hop ones, those its Connection names, the
 * gate's marker; Transfer-Encoding in answer to a HEAD) and whether X-Request-Id is added (asked
 * for, and the origin set none). Undefined when nothing: the origin's Response can go to the client as is, with
 * no copy (an app that echoes X-Request-Id, as Rails and many frameworks do). Fields the runtime
 * writes itself (WRITTEN_BY_RUNTIME) are left to it: a lookup per field that can matter, no walk
 * over every field.
 */
export interface ClientEdit {
  drop: string[];
  addRequestId: boolean;
}

export function clientEdit(headers: Headers, method?: string, echoRequestId = true): ClientEdit | undefined {
  let drop: string[] | undefined;
  const connection = headers.get("connection");
  // "Connection: keep-alive" (what Node's and most HTTP/1.1 servers send) names a field the runtime writes: no split.
  if (connection !== null && !KEEP_ALIVE_ONLY.test(connection)) {
    for (const token of connection.split(",")) {
      const name = token.trim().toLowerCase();
      // A named field the runtime writes (keep-alive, upgrade) is dropped by it.
      if (!WRITTEN_BY_RUNTIME.has(name) && isFieldName(name) && headers.has(name)) (drop ??= []).push(name);
    }
  }
  for (const name of NOT_FOR_CLIENT) if (headers.has(name)) (drop ??= []).push(name);
  // A HEAD's answer is the one whose Transfer-Encoding the runtime sends as given.
  if (method === "HEAD" && headers.has("transfer-encoding")) (drop ??= []).push("transfer-encoding");
  // Also when the origin's Connection names X-Request-Id: its own goes, the edge's comes. Not asked
  // for (an answer that is not an error, by default: ProxyDeps.echoRequestId): no lookup either.
  const addRequestId = echoRequestId && (drop?.includes("x-request-id") === true || !headers.has("x-request-id"));
  return drop === undefined && !addRequestId ? undefined : { drop: drop ?? [], addRequestId };
}

/** Applies a clientEdit to the client's copy of the fields (a Response built from the origin's). */
export function applyClientEdit(headers: Headers, edit: ClientEdit, requestId: string): Headers {
  for (const name of edit.drop) headers.delete(name);
  if (edit.addRequestId) headers.append("x-request-id", requestId);
  return headers;
}

/**
 * Turns a copy of an origin's response fields into what the client receives, in place:
 * hop-by-hop fields (and those its Connection names) and the gate's marker taken out, and
 * X-Request-Id added unless the origin set one (clientEdit, then applyClientEdit).
 */
export function forClient(headers: Headers, requestId: string, method?: string): Headers {
  const edit = clientEdit(headers, method);
  return edit === undefined ? headers : applyClientEdit(headers, edit, requestId);
}

/** The headers the client receives from an origin's response, as a new object (forClient on a copy). */
export function clientResponseHeaders(response: Response, requestId: string): Headers {
  return forClient(new Headers(response.headers), requestId);
}
