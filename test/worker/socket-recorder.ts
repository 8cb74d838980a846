// Test helpers around the recording origin (socket-origins.setup.ts): read
// back what one connection sent, and split those bytes into the requests an
// HTTP/1.1 server would see in them.
import { inject } from "vitest";
import type { Recording } from "./socket-origins.setup.ts";
import { until } from "./websocket-client.ts";

const o = inject("socketOrigins");

let seq = 0;
/** A fresh id for `/rec/<id>`; unique across test files and reruns. */
export function recordingId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${(seq++).toString(36)}`;
}

async function recording(id: string): Promise<Recording | null> {
  const res = await fetch(`${o.control}/rec/${id}`);
  return res.status === 404 ? null : ((await res.json()) as Recording);
}

/** Bytes the origin received on that connection, so far (`closed: false`) or in all. */
export async function recorded(id: string, opts: { closed?: boolean; atLeast?: number } = {}): Promise<Uint8Array> {
  const r = await until(
    () => recording(id),
    (v) => v !== null && (!opts.closed || v.closed) && base64Length(v.raw) >= (opts.atLeast ?? 0),
    `the recorder to see ${id}`,
  );
  return Uint8Array.from(atob(r!.raw), (c) => c.charCodeAt(0));
}

function base64Length(b64: string): number {
  return Math.floor((b64.length * 3) / 4) - (b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0);
}

export interface ParsedRequest {
  requestLine: string;
  /** Names lowercased; values as raw bytes (to compare with UTF-8). */
  headers: [string, Uint8Array][];
  body: Uint8Array;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const latin1 = (b: Uint8Array) => String.fromCharCode(...b);

/**
 * Splits a connection's bytes into requests the way a strict HTTP/1.1 server
 * would (RFC 9112: CRLF lines, token names, Content-Length or chunked bodies).
 * Whatever is left over counts as one more (garbage) request: the property
 * under test is that there is exactly one.
 */
export function parseRequests(bytes: Uint8Array): { requests: ParsedRequest[]; garbage: Uint8Array | null } {
  const requests: ParsedRequest[] = [];
  let i = 0;
  while (i < bytes.length) {
    const end = indexOfSeq(bytes, [13, 10, 13, 10], i);
    if (end === -1) return { requests, garbage: bytes.subarray(i) };
    const lines = splitCrlf(bytes.subarray(i, end));
    const requestLine = latin1(lines[0]!);
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \/\S* HTTP\/1\.1$/.test(requestLine)) return { requests, garbage: bytes.subarray(i) };
    const headers: [string, Uint8Array][] = [];
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(0x3a);
      const name = colon === -1 ? "" : latin1(line.subarray(0, colon));
      // A bare CR or LF inside a line is how a second request hides.
      if (!TOKEN.test(name) || line.includes(13) || line.includes(10)) return { requests, garbage: bytes.subarray(i) };
      let v = line.subarray(colon + 1);
      while (v.length > 0 && (v[0] === 0x20 || v[0] === 0x09)) v = v.subarray(1);
      while (v.length > 0 && (v[v.length - 1] === 0x20 || v[v.length - 1] === 0x09)) v = v.subarray(0, -1);
      headers.push([name.toLowerCase(), v]);
    }
    i = end + 4;
    const cl = headers.find(([n]) => n === "content-length");
    const chunked = headers.some(([n, v]) => n === "transfer-encoding" && latin1(v).toLowerCase() === "chunked");
    let body: Uint8Array = new Uint8Array(0);
    if (chunked) {
      const parts: Uint8Array[] = [];
      for (;;) {
        const eol = indexOfSeq(bytes, [13, 10], i);
        if (eol === -1) return { requests, garbage: bytes.subarray(i) };
        const size = parseInt(latin1(bytes.subarray(i, eol)), 16);
        if (!/^[0-9a-f]+$/i.test(latin1(bytes.subarray(i, eol)))) return { requests, garbage: bytes.subarray(i) };
        i = eol + 2;
        if (size === 0) {
          if (bytes[i] !== 13 || bytes[i + 1] !== 10) return { requests, garbage: bytes.subarray(i) };
          i += 2;
          break;
        }
        parts.push(bytes.subarray(i, i + size));
        i += size;
        if (bytes[i] !== 13 || bytes[i + 1] !== 10) return { requests, garbage: bytes.subarray(i) };
        i += 2;
      }
      body = concatBytes(parts);
    } else if (cl) {
      const n = Number(latin1(cl[1]));
      body = bytes.subarray(i, i + n);
      i += n;
    }
    requests.push({ requestLine, headers, body });
  }
  return { requests, garbage: null };
}

function splitCrlf(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0;
  for (let at = indexOfSeq(b, [13, 10], from); at !== -1; at = indexOfSeq(b, [13, 10], from)) {
    out.push(b.subarray(from, at));
    from = at + 2;
  }
  out.push(b.subarray(from));
  return out;
}

function indexOfSeq(b: Uint8Array, seq: number[], from: number): number {
  outer: for (let i = from; i <= b.length - seq.length; i++) {
    for (let j = 0; j < seq.length; j++) if (b[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
