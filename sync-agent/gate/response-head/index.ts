// The common answer from a NodePort, relayed in one pass: a status line and
// CRLF-terminated fields, exactly one Content-Length or (HTTP/1.1) exactly one
// `Transfer-Encoding: chunked` (what Node's http server sends for a body written
// after writeHead), a status that has a body. For such a head the gate needs no full parse: it
// copies the bytes it keeps, drops the connection fields (and the gate's own
// markers, which only the gate may send), and puts the body's first bytes
// behind them, so the edge gets one write. Anything else (bare LF, interim or
// bodiless statuses, chunked or close-delimited bodies, repeated lengths, a
// byte the strict parser could refuse) returns null and takes the full path
// (worker/transport/socket's ResponseParser): this is an accelerator, never a
// second opinion. Pure: bytes in, bytes out.

import { GATE_CAUSE_HEADER, GATE_REFUSED_HEADER } from "../../../worker/snapshot/signing.ts";
import { ChunkedDecoder } from "../../../worker/transport/socket/chunked.ts";

export interface PlainResponse {
  /** The head for the edge, followed by the body bytes that came with it (`bodyBytes` of them). */
  out: Buffer;
  bodyBytes: number;
  /** The body's Content-Length; -1 for a chunked body. */
  length: number;
  /** A chunked body that did not end in these bytes: the decoder that follows it on. */
  chunked?: ChunkedDecoder;
  /** The NodePort's connection cannot be reused: HTTP/1.0, `Connection: close`, or bytes after the body. */
  dirty: boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const CLOSE_FIELD = Buffer.from("connection: close\r\n", "latin1");
const CRLF = Buffer.from("\r\n", "latin1");
const HTTP11 = Buffer.from("HTTP/1.1", "latin1");
const CLOSE_TOKEN = /(^|,)\s*close\s*(,|$)/i;
const CHUNKED = "chunked";

/** RFC 9110 tchar, by byte. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

// Field names the relay acts on, by length: what to do with each.
const KEEP = 0;
const DROP = 1;
const LENGTH = 2;
const CONNECTION = 3;
const GIVE_UP = 4;
const CHUNKED_FIELD = 5;
const NAMED = new Map<number, [string, number][]>();
for (const [name, what] of [
  ["content-length", LENGTH],
  ["transfer-encoding", CHUNKED_FIELD],
  ["connection", CONNECTION],
  ["keep-alive", DROP],
  ["proxy-connection", DROP],
  ["upgrade", DROP],
  [GATE_REFUSED_HEADER, DROP],
  [GATE_CAUSE_HEADER, DROP],
] as const) {
  const list = NAMED.get(name.length) ?? [];
  list.push([name, what]);
  NAMED.set(name.length, list);
}

function classify(buf: Uint8Array, start: number, end: number): number {
  const candidates = NAMED.get(end - start);
  if (candidates === undefined) return KEEP;
  outer: for (const [name, what] of candidates) {
    for (let i = 0; i < name.length; i++) {
      // ASCII lowercase: tchar letters only (the name was checked to be a token).
      if ((buf[start + i]! | 0x20) !== name.charCodeAt(i)) continue outer;
    }
    return what;
  }
  return KEEP;
}

/**
 * `buf` holds a whole response head ending at `end` (just past its empty line), maybe followed by body
 * bytes. `close`: the edge's connection closes after this answer (the head then says so). Returns the
 * bytes to relay, or null when the head needs the full parser.
 */
export function plainResponse(buf: Buffer, end: number, close: boolean, maxHeadBytes: number): PlainResponse | null {
  if (end > maxHeadBytes || end < 16) return null;
  // "HTTP/1.x NNN" then CRLF or a reason phrase.
  if (buf[0] !== 0x48 || buf[1] !== 0x54 || buf[2] !== 0x54 || buf[3] !== 0x50 || buf[4] !== 0x2f || buf[5] !== 0x31 || buf[6] !== 0x2e) return null;
  const minor = buf[7]!;
  if ((minor !== 0x30 && minor !== 0x31) || buf[8] !== 0x20) return null;
  let status = 0;
  for (let i = 9; i < 12; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return null;
    status = status * 10 + d;
  }
  // Interim, upgrade and bodiless answers take the full path.
  if (status < 200 || status > 599 || status === 204 || status === 304) return null;
  let p = 12;
  if (buf[p] === 0x20) {
    for (p++; buf[p] !== CR; p++) {
      const c = buf[p]!;
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) return null;
    }
  }
  if (buf[p] !== CR || buf[p + 1] !== LF) return null;
  const statusEnd = p + 2;
  // [start, end) of the lines kept, in order.
  const kept: number[] = [];
  let length = -1;
  let chunked = false;
  let dirty = minor === 0x30;
  for (p = statusEnd; p < end - 2; ) {
    const lineStart = p;
    while (TCHAR[buf[p]!] === 1) p++;
    if (p === lineStart || buf[p] !== 0x3a) return null;
    const nameEnd = p;
    let v = p + 1;
    while (buf[v] === 0x20 || buf[v] === 0x09) v++;
    for (p = v; buf[p] !== CR; p++) {
      const c = buf[p]!;
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) return null;
    }
    if (buf[p + 1] !== LF) return null;
    let ve = p;
    while (ve > v && (buf[ve - 1] === 0x20 || buf[ve - 1] === 0x09)) ve--;
    p += 2;
    switch (classify(buf, lineStart, nameEnd)) {
      case KEEP:
        if (kept.length > 0 && kept[kept.length - 1] === lineStart) kept[kept.length - 1] = p;
        else kept.push(lineStart, p);
        break;
      case LENGTH: {
        if (length !== -1 || ve - v < 1 || ve - v > 15) return null;
        let n = 0;
        for (let i = v; i < ve; i++) {
          const d = buf[i]! - 0x30;
          if (d < 0 || d > 9) return null;
          n = n * 10 + d;
        }
        length = n;
        if (kept.length > 0 && kept[kept.length - 1] === lineStart) kept[kept.length - 1] = p;
        else kept.push(lineStart, p);
        break;
      }
      case CHUNKED_FIELD: {
        // Exactly "chunked", once, on HTTP/1.1; any other coding (or a list) takes the full path.
        if (chunked || minor !== 0x31 || ve - v !== CHUNKED.length) return null;
        for (let i = 0; i < CHUNKED.length; i++) if ((buf[v + i]! | 0x20) !== CHUNKED.charCodeAt(i)) return null;
        chunked = true;
        if (kept.length > 0 && kept[kept.length - 1] === lineStart) kept[kept.length - 1] = p;
        else kept.push(lineStart, p);
        break;
      }
      case CONNECTION:
        if (CLOSE_TOKEN.test(buf.toString("latin1", v, ve))) dirty = true;
        break;
      case DROP:
        break;
      default:
        return null;
    }
  }
  if (p !== end - 2 || buf[p] !== CR || buf[p + 1] !== LF || (length === -1) !== chunked) return null; // one framing: a Content-Length or chunked, never both or neither
  const available = buf.length - end;
  let bodyBytes: number;
  let decoder: ChunkedDecoder | undefined;
  if (chunked) {
    // Followed to its end only (the bytes go on as the NodePort framed them); a bad chunk takes the full path, which refuses it.
    decoder = new ChunkedDecoder();
    const r = decoder.feed(buf.subarray(end));
    if (r.error) return null;
    bodyBytes = available - r.rest.length;
    if (r.done) {
      if (r.rest.length > 0) dirty = true;
      decoder = undefined;
    }
  } else {
    bodyBytes = Math.min(length, available);
    if (available > length) dirty = true;
  }
  let size = HTTP11.length + (statusEnd - 8) + (close ? CLOSE_FIELD.length : 0) + 2 + bodyBytes;
  for (let i = 0; i < kept.length; i += 2) size += kept[i + 1]! - kept[i]!;
  const out = Buffer.allocUnsafe(size);
  let o = HTTP11.copy(out, 0);
  o += buf.copy(out, o, 8, statusEnd);
  for (let i = 0; i < kept.length; i += 2) o += buf.copy(out, o, kept[i]!, kept[i + 1]!);
  if (close) o += CLOSE_FIELD.copy(out, o);
  o += CRLF.copy(out, o);
  buf.copy(out, o, end, end + bodyBytes);
  return decoder === undefined ? { out, bodyBytes, length, dirty } : { out, bodyBytes, length, dirty, chunked: decoder };
}
