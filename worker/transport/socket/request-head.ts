// Serializes the request line and header block an origin receives over the
// socket. The Host header is the one the proxy chose (the client's), which is
// what ingress controllers behind a NodePort route on.
//
// Request smuggling: workerd hands header values over decoded as UTF-8, so a
// value may hold any code point. Writing one byte per UTF-16 unit (`& 0xff`)
// turns U+010D U+010A into CR LF: injected fields and a second request. Heads
// are written as UTF-8 (what workerd's own fetch() sends) and every name,
// value, method and target is checked before a byte goes out.
import { InvalidRequestHeadError } from "../types.ts";
import { fromLatin1 } from "./bytes.ts";

/** How the request body goes on the wire. */
export type RequestFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

// Connection-specific fields (RFC 9110 §7.6.1) describe the client's hop, not ours.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "content-length",
  "host",
]);

/** RFC 9110 §5.6.2 token: field names and methods. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What ends a line or a string somewhere on the way: never inside a head. */
const LINE_BREAKING = /[\r\n\0]/;
const utf8 = new TextEncoder();
const BODYLESS_OK = new Set(["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"]);

export interface RequestHeadInput {
  method: string;
  /** origin-form target: path and query. */
  target: string;
  /** The fields to send; `fields` instead when the caller has them as a plain record. */
  headers?: Headers;
  /**
   * The same as a plain record (OutgoingRequest.fields: names in lowercase, one
   * entry per name): read without a runtime call per field, where a Headers
   * object costs one to build and one per field to iterate. Takes precedence.
   */
  fields?: Readonly<Record<string, string>>;
  /** Host header value when the request carries none (address:port). */
  defaultHost: string;
  framing: RequestFraming;
  /** Extra fields written last, e.g. the WebSocket handshake's. */
  extra?: [string, string][];
  /** `close` for plain requests, `Upgrade` for a WebSocket handshake. */
  connection: "close" | "Upgrade";
}

const NO_BODY: RequestFraming = Object.freeze({ kind: "none" });
const EMPTY_BODY: RequestFraming = Object.freeze({ kind: "length", length: 0 });

/** Picks the body framing: the declared Content-Length when valid, chunked otherwise. */
export function requestFraming(method: string, headers: Headers | Readonly<Record<string, string>>, hasBody: boolean): RequestFraming {
  if (!hasBody) {
    // Like fetch(): a POST/PUT/PATCH without body still says it has none.
    return BODYLESS_OK.has(method) || BODYLESS_OK.has(method.toUpperCase()) ? NO_BODY : EMPTY_BODY;
  }
  const cl = headers instanceof Headers ? headers.get("content-length") : (fieldOf(headers, "content-length") ?? null);
  if (cl !== null && /^\d+$/.test(cl.trim())) {
    const length = Number(cl.trim());
    if (Number.isSafeInteger(length)) return { kind: "length", length };
  }
  return { kind: "chunked" };
}

export function serializeRequestHead(input: RequestHeadInput): Uint8Array {
  if (!TOKEN.test(input.method)) throw new InvalidRequestHeadError(`invalid method ${JSON.stringify(input.method)}`);
  if (!input.target.startsWith("/") || /[\s\x00-\x1f\x7f]/.test(input.target)) {
    throw new InvalidRequestHeadError(`invalid request target ${JSON.stringify(input.target)}`);
  }
  let head = `${input.method} ${input.target} HTTP/1.1\r\n`;
  if (input.fields !== undefined) head += recordLines(input.fields, input.defaultHost);
  else {
    const headers = input.headers ?? new Headers();
    // Fields the client's Connection header names are its hop's too (rare: a set only when present).
    const connection = headers.get("connection");
    const listed = connection === null ? undefined : connectionListed(connection);
    head += field("host", headers.get("host") ?? input.defaultHost);
    for (const [name, value] of headers) {
      if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
      head += field(name, value);
    }
  }
  for (const [name, value] of input.extra ?? []) head += field(name, value);
  if (input.framing.kind === "length") head += `content-length: ${input.framing.length}\r\n`;
  if (input.framing.kind === "chunked") head += "transfer-encoding: chunked\r\n";
  head += `connection: ${input.connection}\r\n\r\n`;
  return utf8.encode(head);
}

function connectionListed(connection: string): Set<string> {
  return new Set(
    connection
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ""),
  );
}

/**
 * The Host line, then every other field of a record, in one pass, with the same
 * rules as the Headers path: names compared in lowercase (a name in another case
 * is the same field), hop-by-hop ones and those Connection names dropped.
 */
function recordLines(fields: Readonly<Record<string, string>>, defaultHost: string): string {
  let host: string | undefined;
  let connection: string | undefined;
  let lines = "";
  for (const name in fields) {
    if (!Object.hasOwn(fields, name)) continue;
    const lower = name.toLowerCase();
    const value = fields[name]!;
    if (lower === "host") host = host === undefined ? value : `${host}, ${value}`;
    else if (lower === "connection") connection = connection === undefined ? value : `${connection}, ${value}`;
    else if (!HOP_BY_HOP.has(lower)) lines += field(lower, value);
  }
  if (connection !== undefined) {
    // Rare: the record made again without the fields Connection names.
    const listed = connectionListed(connection);
    lines = "";
    for (const name in fields) {
      if (!Object.hasOwn(fields, name)) continue;
      const lower = name.toLowerCase();
      if (!HOP_BY_HOP.has(lower) && !listed.has(lower)) lines += field(lower, fields[name]!);
    }
  }
  return field("host", host ?? defaultHost) + lines;
}

/** A record's field by its lowercase name, whatever the case it is stored under. */
export function fieldOf(fields: Readonly<Record<string, string>>, name: string): string | undefined {
  if (Object.hasOwn(fields, name)) return fields[name];
  for (const k in fields) if (Object.hasOwn(fields, k) && k.toLowerCase() === name) return fields[k];
  return undefined;
}

/** One `name: value` line, or InvalidRequestHeadError when it could break out of its line. */
function field(name: string, value: string): string {
  if (!TOKEN.test(name)) throw new InvalidRequestHeadError(`invalid header name ${JSON.stringify(name.slice(0, 80))}`);
  if (LINE_BREAKING.test(value)) {
    throw new InvalidRequestHeadError(`CR, LF or NUL in the value of header ${JSON.stringify(name)}`);
  }
  return `${name}: ${value}\r\n`;
}

/** Host header form of an origin address: IPv6 literals in brackets. */
export function hostPort(address: string, port: number): string {
  return `${address.includes(":") ? `[${address}]` : address}:${port}`;
}

const CRLF = new Uint8Array([0x0d, 0x0a]);
const LAST_CHUNK = fromLatin1("0\r\n\r\n");

/** One chunk of a chunked body, as a single buffer (one socket write). */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const size = fromLatin1(`${data.length.toString(16)}\r\n`);
  const out = new Uint8Array(size.length + data.length + 2);
  out.set(size);
  out.set(data, size.length);
  out.set(CRLF, size.length + data.length);
  return out;
}

export function lastChunk(): Uint8Array {
  return LAST_CHUNK.slice();
}
