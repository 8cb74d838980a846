// The gate's strict HTTP/1.1 request-head parser: the bytes come from the
// internet, so anything two parsers could read differently is refused rather
// than guessed at (RFC 9112): bare LF or CR, obsolete line folding, a field name
// that is not a token, control characters in a value, Content-Length together
// with Transfer-Encoding, several Content-Length fields, a Transfer-Encoding
// other than "chunked". Pure: bytes in, a head (or "not yet", or an error) out.

export type RequestFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

export interface ParsedRequestHead {
  method: string;
  /** The request target as received (the signature covers it as is). */
  target: string;
  /** Field names as received, values with surrounding whitespace trimmed: [name, value, name, value, …]. */
  rawHeaders: string[];
  framing: RequestFraming;
  /** An Upgrade request (Upgrade field, and "upgrade" among the Connection tokens). */
  upgrade: boolean;
  /** The client will send no further request on this connection (Connection: close, or HTTP/1.0). */
  close: boolean;
  /** Bytes of the head, leading empty lines and the final empty line included. */
  headBytes: number;
}

/** Refused head: the status to answer with before closing the connection. */
export class RequestHeadError extends Error {
  override readonly name = "RequestHeadError";
  constructor(
    readonly status: 400 | 431,
    message: string,
  ) {
    super(message);
  }
}

export const DEFAULT_MAX_REQUEST_HEAD_BYTES = 16 * 1024;

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
/**
 * Whether a field name is `lower` (an ASCII name in lowercase), whatever the name's case. As
 * `name.toLowerCase() === lower` for the latin1 strings a head holds, without a new string (and the
 * runtime call) per name: a head's names are compared a few times on every request.
 */
export function sameName(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const l = lower.charCodeAt(i);
    if (c !== l && !(c >= 0x41 && c <= 0x5a && c + 0x20 === l)) return false;
  }
  return true;
}

/** RFC 9110 tchar, by char code. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;
const MAX_LEADING_EMPTY_LINES = 8;
/**
 * Every field line after the request line at once (sticky, from the request line's CRLF to the end): a
 * token, a colon, then only HTAB, visible ASCII, SP and obs-text. What parseLinesByChar accepts line by
 * line, checked by the regexp engine's compiled code instead of a JavaScript loop over every character.
 */
const FIELD_LINES = /(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*)*$/y;

/**
 * Parses the head at the start of `buf`. Returns null while it is incomplete (and within the size
 * bound); throws RequestHeadError for a head that must be refused. Bytes after the head (a body, a
 * pipelined request) are not looked at.
 */
export function parseRequestHead(buf: Uint8Array, maxBytes = DEFAULT_MAX_REQUEST_HEAD_BYTES): ParsedRequestHead | null {
  return parse(buf, maxBytes, false);
}

/** parseRequestHead with its field lines checked character by character: the reference its fast path is held to. */
export function parseRequestHeadByChar(buf: Uint8Array, maxBytes = DEFAULT_MAX_REQUEST_HEAD_BYTES): ParsedRequestHead | null {
  return parse(buf, maxBytes, true);
}

function parse(buf: Uint8Array, maxBytes: number, byChar: boolean): ParsedRequestHead | null {
  // Empty lines before the request line are ignored (RFC 9112 §2.2), a few of them.
  let start = 0;
  for (let n = 0; n < MAX_LEADING_EMPTY_LINES && buf[start] === 0x0d; n++) {
    if (start + 1 >= buf.length) return null;
    if (buf[start + 1] !== 0x0a) throw new RequestHeadError(400, "bare CR");
    start += 2;
  }
  const limit = Math.min(buf.length, maxBytes + 4);
  const end = headEnd(buf, start, limit);
  if (end === -1) {
    if (buf.length > maxBytes) throw new RequestHeadError(431, `request head larger than ${maxBytes} bytes`);
    return null;
  }
  if (end > maxBytes) throw new RequestHeadError(431, `request head larger than ${maxBytes} bytes`);
  // One char per byte: field values may hold obs-text (0x80-0xFF), passed on unchanged.
  const text = Buffer.from(buf.buffer, buf.byteOffset + start, end - start - 4).toString("latin1");
  return parseLines(text, end, byChar);
}

/**
 * Index just past CRLFCRLF, or -1; a LF without its CR, or a CR without its LF, is refused at once.
 * Line by line with the runtime's byte search (memchr) instead of a JavaScript loop over every byte:
 * the same decisions (a property test holds it to the byte loop), a quarter of the instructions.
 */
export function headEnd(buf: Uint8Array, from: number, limit: number): number {
  for (let line = from; ; ) {
    const lf = buf.indexOf(0x0a, line);
    // Every CR before this line's LF (or before the limit) must be the one right before the LF.
    const cr = buf.indexOf(0x0d, line);
    if (lf === -1 || lf >= limit) {
      // No line end within the limit: a CR in it is refused only when the byte after it is there and not a LF.
      for (let c = cr; c !== -1 && c < limit; c = buf.indexOf(0x0d, c + 1)) {
        if (c + 1 < buf.length && buf[c + 1] !== 0x0a) throw new RequestHeadError(400, "bare CR in the request head");
      }
      return -1;
    }
    if (cr !== -1 && cr < lf - 1) throw new RequestHeadError(400, "bare CR in the request head");
    if (lf === from || buf[lf - 1] !== 0x0d) throw new RequestHeadError(400, "bare LF in the request head");
    if (buf[lf - 2] === 0x0a && lf - 3 >= from && buf[lf - 3] === 0x0d) return lf + 1;
    line = lf + 1;
  }
}

function parseLines(text: string, headBytes: number, byChar: boolean): ParsedRequestHead {
  let eol = text.indexOf("\r\n");
  if (eol === -1) eol = text.length;
  const m = REQUEST_LINE.exec(text.slice(0, eol));
  if (!m) throw new RequestHeadError(400, "bad request line");
  FIELD_LINES.lastIndex = eol;
  // Any line the pattern does not take: the line-by-line checks find it and say what is wrong with it.
  if (byChar || !FIELD_LINES.test(text)) return parseLinesByChar(text, headBytes, m, eol);
  const rawHeaders: string[] = [];
  let te: string | undefined;
  let cl: string | undefined;
  let clCount = 0;
  let connection = "";
  let hasUpgrade = false;
  for (let s = eol + 2; s < text.length; s = eol + 2) {
    eol = text.indexOf("\r\n", s);
    if (eol === -1) eol = text.length;
    const colon = text.indexOf(":", s);
    let v = colon + 1;
    let ve = eol;
    while (v < ve && (text.charCodeAt(v) === 0x20 || text.charCodeAt(v) === 0x09)) v++;
    while (ve > v && (text.charCodeAt(ve - 1) === 0x20 || text.charCodeAt(ve - 1) === 0x09)) ve--;
    const name = text.slice(s, colon);
    const value = text.slice(v, ve);
    rawHeaders.push(name, value);
    const len = name.length;
    // Only the few names that matter here are compared.
    if (len === 17 || len === 14 || len === 10 || len === 7) {
      if (sameName(name, "transfer-encoding")) te = te === undefined ? value : `${te},${value}`;
      else if (sameName(name, "content-length")) {
        clCount++;
        cl = value;
      } else if (sameName(name, "connection")) connection += `,${value.toLowerCase()}`;
      else if (sameName(name, "upgrade")) hasUpgrade = true;
    }
  }
  return headOf(m, rawHeaders, te, cl, clCount, connection, hasUpgrade, headBytes);
}

function parseLinesByChar(text: string, headBytes: number, m: RegExpExecArray, requestLineEnd: number): ParsedRequestHead {
  let eol = requestLineEnd;
  const rawHeaders: string[] = [];
  let te: string | undefined;
  let cl: string | undefined;
  let clCount = 0;
  let connection = "";
  let hasUpgrade = false;
  for (let s = eol + 2; s < text.length; s = eol + 2) {
    eol = text.indexOf("\r\n", s);
    if (eol === -1) eol = text.length;
    const first = text.charCodeAt(s);
    if (first === 0x20 || first === 0x09) throw new RequestHeadError(400, "obsolete line folding");
    let i = s;
    while (i < eol) {
      const c = text.charCodeAt(i);
      if (c >= 128 || TCHAR[c] !== 1) break;
      i++;
    }
    if (i === s || i === eol || text.charCodeAt(i) !== 0x3a) throw new RequestHeadError(400, "bad header line");
    let v = i + 1;
    let ve = eol;
    while (v < ve && (text.charCodeAt(v) === 0x20 || text.charCodeAt(v) === 0x09)) v++;
    while (ve > v && (text.charCodeAt(ve - 1) === 0x20 || text.charCodeAt(ve - 1) === 0x09)) ve--;
    for (let k = v; k < ve; k++) {
      const c = text.charCodeAt(k);
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new RequestHeadError(400, "control character in a header value");
    }
    const name = text.slice(s, i);
    const value = text.slice(v, ve);
    rawHeaders.push(name, value);
    const len = name.length;
    // Only the few names that matter here are lowercased.
    if (len === 17 || len === 14 || len === 10 || len === 7) {
      const lower = name.toLowerCase();
      if (lower === "transfer-encoding") te = te === undefined ? value : `${te},${value}`;
      else if (lower === "content-length") {
        clCount++;
        cl = value;
      } else if (lower === "connection") connection += `,${value.toLowerCase()}`;
      else if (lower === "upgrade") hasUpgrade = true;
    }
  }
  return headOf(m, rawHeaders, te, cl, clCount, connection, hasUpgrade, headBytes);
}

function headOf(m: RegExpExecArray, rawHeaders: string[], te: string | undefined, cl: string | undefined, clCount: number, connection: string, hasUpgrade: boolean, headBytes: number): ParsedRequestHead {
  let framing: RequestFraming = { kind: "none" };
  if (te !== undefined) {
    if (clCount > 0) throw new RequestHeadError(400, "both Transfer-Encoding and Content-Length");
    if (te.trim().toLowerCase() !== "chunked") throw new RequestHeadError(400, "a Transfer-Encoding other than chunked");
    framing = { kind: "chunked" };
  } else if (clCount > 1) throw new RequestHeadError(400, "several Content-Length fields");
  else if (cl !== undefined) {
    if (!/^\d{1,15}$/.test(cl)) throw new RequestHeadError(400, "bad Content-Length");
    const length = Number(cl);
    if (length > 0) framing = { kind: "length", length };
  }
  const tokens = connection === "" ? [] : connection.split(",").map((t) => t.trim());
  const http10 = m[3] === "0";
  return {
    method: m[1]!,
    target: m[2]!,
    rawHeaders,
    framing,
    upgrade: hasUpgrade && tokens.includes("upgrade"),
    close: http10 ? !tokens.includes("keep-alive") : tokens.includes("close"),
    headBytes,
  };
}
