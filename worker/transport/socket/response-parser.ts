// Incremental HTTP/1.1 response parser: a pure state machine fed with whatever
// byte slices the socket delivers. It yields the head once complete, then body
// data framed by Content-Length, chunked encoding or connection close
// (RFC 9112 §6.3), and refuses anything ambiguous instead of guessing.
import { ByteQueue, fromLatin1, latin1 } from "./bytes.ts";
import { ChunkedDecoder, stripEol } from "./chunked.ts";
import { HttpParseError } from "./http-error.ts";

export const DEFAULT_MAX_HEAD_BYTES = 64 * 1024;

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
const DIGITS = /^\d+$/;

export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" }
  /** 101 Switching Protocols: every later byte belongs to the new protocol. */
  | { kind: "upgrade" };

export interface ResponseHead {
  version: "1.0" | "1.1";
  status: number;
  statusText: string;
  /** Field names lowercased, in arrival order, repeats kept (Set-Cookie). */
  headers: [string, string][];
  framing: BodyFraming;
}

export type ResponseEvent =
  | { kind: "head"; head: ResponseHead }
  | { kind: "data"; bytes: Uint8Array }
  | { kind: "end"; trailers: [string, string][] }
  /**
   * The body went wrong after the head was complete. Reported as an event
   * (not thrown) so the head parsed from the same bytes is not lost: whether
   * the client gets a 502 or a broken body must not depend on TCP segmentation.
   */
  | { kind: "error"; error: HttpParseError };

export interface ResponseParserOptions {
  /** The request method: a response to HEAD has no body whatever it says. */
  method: string;
  maxHeadBytes?: number;
}

type State = "head" | "body" | "done" | "failed";

export class ResponseParser {
  private state: State = "head";
  private readonly head = new ByteQueue();
  private scanFrom = 0;
  private statusLineChecked = false;
  private framing: BodyFraming = { kind: "none" };
  private remaining = 0;
  private chunked: ChunkedDecoder | undefined;
  private readonly maxHeadBytes: number;
  private readonly method: string;
  /** Bytes of the response seen so far, interim responses included. */
  bytesSeen = 0;

  constructor(opts: ResponseParserOptions) {
    this.method = opts.method.toUpperCase();
    this.maxHeadBytes = opts.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
  }

  get done(): boolean {
    return this.state === "done" || this.state === "failed";
  }

  /**
   * Feeds the next bytes. A malformed head throws HttpParseError; a malformed
   * body yields an "error" event after the head and data before it.
   */
  feed(input: Uint8Array): ResponseEvent[] {
    this.bytesSeen += input.length;
    const events: ResponseEvent[] = [];
    let rest = input;
    try {
      while (rest.length > 0 && (this.state === "head" || this.state === "body")) {
        rest = this.state === "head" ? this.feedHead(rest, events) : this.feedBody(rest, events);
      }
    } catch (e) {
      if (this.state !== "body" || !(e instanceof HttpParseError)) throw e;
      this.state = "failed";
      events.push({ kind: "error", error: e });
    }
    // Bytes after a complete response are ignored: each request has its own connection.
    return events;
  }

  /** The origin closed the connection: ends a close-delimited body, else it is truncated. */
  finish(): ResponseEvent[] {
    if (this.state === "done" || this.state === "failed") return [];
    if (this.state === "body") {
      try {
        return this.finishBody();
      } catch (e) {
        this.state = "failed";
        return [{ kind: "error", error: e as HttpParseError }];
      }
    }
    throw new HttpParseError(
      this.bytesSeen === 0 ? "connection closed before a response" : "connection closed inside the response head",
    );
  }

  private finishBody(): ResponseEvent[] {
    const f = this.framing;
    if (f.kind === "close" || f.kind === "upgrade") {
      this.state = "done";
      return [{ kind: "end", trailers: [] }];
    }
    if (f.kind === "length") {
      throw new HttpParseError(`truncated body: ${this.remaining} of ${f.length} bytes missing`);
    }
    throw new HttpParseError(`truncated chunked body: connection closed ${this.chunked!.position}`);
  }

  private feedHead(input: Uint8Array, events: ResponseEvent[]): Uint8Array {
    if (this.head.length === 0) {
      // The usual case: the whole head in one read. Parsed from the input itself, no copy.
      const end = findHeadEnd(input, 0);
      if (end !== -1) {
        // Decoded once; the status line is checked (first, as when it comes alone) on the text.
        const text = latin1(input.subarray(0, end));
        const m = statusLine(text.slice(0, text.indexOf("\n") + 1));
        if (end > this.maxHeadBytes) throw new HttpParseError(`response head larger than ${this.maxHeadBytes} bytes`);
        return this.headDone(this.parseHead(text, m), input.subarray(end), events);
      }
    }
    const before = this.head.length;
    this.head.push(input);
    if (!this.statusLineChecked) this.statusLineChecked = checkStatusLine(this.head.view());
    const end = findHeadEnd(this.head.view(), this.scanFrom);
    if (end === -1) {
      if (this.head.length > this.maxHeadBytes) {
        throw new HttpParseError(`response head larger than ${this.maxHeadBytes} bytes`);
      }
      this.scanFrom = Math.max(0, this.head.length - 3);
      return input.subarray(input.length);
    }
    if (end > this.maxHeadBytes) throw new HttpParseError(`response head larger than ${this.maxHeadBytes} bytes`);
    const text = latin1(this.head.take(end));
    const consumedFromInput = end - before;
    this.head.consume(this.head.length);
    this.scanFrom = 0;
    this.statusLineChecked = false;
    return this.headDone(this.parseHead(text), input.subarray(consumedFromInput), events);
  }

  /** A complete head was parsed; `rest` is what followed it in the input. */
  private headDone(head: ResponseHead, rest: Uint8Array, events: ResponseEvent[]): Uint8Array {
    if (head.status >= 100 && head.status < 200 && head.status !== 101) {
      return rest; // interim response (100 Continue, 103 Early Hints): skip
    }
    events.push({ kind: "head", head });
    this.framing = head.framing;
    switch (head.framing.kind) {
      case "none":
        this.state = "done";
        events.push({ kind: "end", trailers: [] });
        break;
      case "length":
        this.remaining = head.framing.length;
        this.state = "body";
        if (this.remaining === 0) {
          this.state = "done";
          events.push({ kind: "end", trailers: [] });
        }
        break;
      case "chunked":
        this.chunked = new ChunkedDecoder();
        this.state = "body";
        break;
      default:
        this.state = "body";
    }
    return rest;
  }

  private feedBody(input: Uint8Array, events: ResponseEvent[]): Uint8Array {
    const f = this.framing;
    if (f.kind === "length") {
      const n = Math.min(this.remaining, input.length);
      events.push({ kind: "data", bytes: input.subarray(0, n) });
      this.remaining -= n;
      if (this.remaining === 0) {
        this.state = "done";
        events.push({ kind: "end", trailers: [] });
      }
      return input.subarray(n);
    }
    if (f.kind === "chunked") {
      const r = this.chunked!.feed(input);
      for (const d of r.data) if (d.length > 0) events.push({ kind: "data", bytes: d });
      if (r.error) throw r.error;
      if (r.done) {
        this.state = "done";
        events.push({ kind: "end", trailers: r.trailers });
      }
      return r.rest;
    }
    events.push({ kind: "data", bytes: input });
    return input.subarray(input.length);
  }

  /**
   * One pass over the head's text (one char per byte, ending with the empty
   * line), as strict as splitting it into lines and matching each: a CR not
   * followed by LF anywhere, a bad status line, obsolete line folding, a
   * field name that is not a token, a control character in a value, all refuse
   * the response, in that order of precedence.
   */
  private parseHead(text: string, checked?: RegExpExecArray): ResponseHead {
    // A bare CR anywhere refuses the head before anything else is looked at.
    for (let i = text.indexOf("\r"); i !== -1; i = text.indexOf("\r", i + 1)) {
      if (text.charCodeAt(i + 1) !== 0x0a) throw new HttpParseError("bare CR in line");
    }
    let end = text.indexOf("\n");
    let m = checked;
    if (m === undefined) {
      const statusLine = text.slice(0, end > 0 && text.charCodeAt(end - 1) === 0x0d ? end - 1 : end);
      const found = STATUS_LINE.exec(statusLine);
      if (!found) throw new HttpParseError(`bad status line ${JSON.stringify(statusLine.slice(0, 80))}`);
      m = found;
    }
    const status = Number(m[2]);
    if (status < 100 || status > 599) throw new HttpParseError(`status code ${status} out of range`);
    const headers: [string, string][] = [];
    let te: string | undefined;
    let cl: string | undefined;
    for (let start = end + 1; start < text.length; start = end + 1) {
      end = text.indexOf("\n", start);
      if (end === -1) end = text.length;
      const lineEnd = end > start && text.charCodeAt(end - 1) === 0x0d ? end - 1 : end;
      if (lineEnd === start) continue; // the empty line(s) ending the head
      const first = text.charCodeAt(start);
      if (first === 0x20 || first === 0x09) throw new HttpParseError("obsolete line folding in response headers");
      // The name: token chars up to the colon.
      let i = start;
      while (i < lineEnd && isTokenChar(text.charCodeAt(i))) i++;
      if (i === start || i === lineEnd || text.charCodeAt(i) !== 0x3a) {
        throw new HttpParseError(`bad header line ${JSON.stringify(text.slice(start, lineEnd).slice(0, 80))}`);
      }
      const rawName = text.slice(start, i);
      // The value: SP/HTAB trimmed at both ends; no control characters but HTAB.
      let v = i + 1;
      let ve = lineEnd;
      while (v < ve && (text.charCodeAt(v) === 0x20 || text.charCodeAt(v) === 0x09)) v++;
      while (ve > v && (text.charCodeAt(ve - 1) === 0x20 || text.charCodeAt(ve - 1) === 0x09)) ve--;
      let high = false;
      for (let k = v; k < ve; k++) {
        const c = text.charCodeAt(k);
        if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new HttpParseError(`bad value in header ${rawName}`);
        if (c > 0x7f) high = true;
      }
      const name = rawName.toLowerCase();
      const raw = text.slice(v, ve);
      const value = high ? nonAscii(raw) : raw;
      headers.push([name, value]);
      if (name === "transfer-encoding") te = te === undefined ? value : `${te}, ${value}`;
      else if (name === "content-length") cl = cl === undefined ? value : `${cl}, ${value}`;
    }
    return {
      version: m[1] === "0" ? "1.0" : "1.1",
      status,
      statusText: nonAscii(m[3] ?? ""),
      headers,
      framing: this.framingFor(status, te, cl),
    };
  }

  /** `te` and `cl`: the values of every Transfer-Encoding / Content-Length field, joined with ", ". */
  private framingFor(status: number, te: string | undefined, cl: string | undefined): BodyFraming {
    if (status === 101) return { kind: "upgrade" };
    if (this.method === "HEAD" || status < 200 || status === 204 || status === 304) return { kind: "none" };
    if (te !== undefined) {
      // Both framings at once is how response smuggling starts: refuse it.
      if (cl !== undefined) throw new HttpParseError("both Transfer-Encoding and Content-Length");
      const codings = te
        .split(",")
        .map((c) => c.trim().toLowerCase())
        .filter((c) => c !== "");
      if (codings.length === 0) throw new HttpParseError("empty Transfer-Encoding");
      const chunkedAt = codings.indexOf("chunked");
      if (chunkedAt !== -1 && chunkedAt !== codings.length - 1) {
        throw new HttpParseError("chunked is not the final transfer coding");
      }
      return chunkedAt === -1 ? { kind: "close" } : { kind: "chunked" };
    }
    if (cl !== undefined) {
      // The common case first: one field, digits only.
      if (DIGITS.test(cl)) {
        const length = Number(cl);
        if (!Number.isSafeInteger(length)) throw new HttpParseError("Content-Length too large");
        return { kind: "length", length };
      }
      const values = cl.split(",").map((v) => v.trim());
      const first = values[0]!;
      const shown = JSON.stringify(cl);
      if (!values.every((v) => DIGITS.test(v))) throw new HttpParseError(`invalid Content-Length ${shown}`);
      if (!values.every((v) => Number(v) === Number(first))) {
        throw new HttpParseError(`conflicting Content-Length values ${shown}`);
      }
      const length = Number(first);
      if (!Number.isSafeInteger(length)) throw new HttpParseError("Content-Length too large");
      return { kind: "length", length };
    }
    return { kind: "close" };
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Field bytes above 0x7F, read one char per byte. The runtime writes non-ASCII
 * header text as UTF-8, so bytes that are valid UTF-8 (the usual case: file
 * names, display names) are decoded as such and reach the client unchanged.
 */
function nonAscii(value: string): string {
  if (!/[\x80-\xff]/.test(value)) return value;
  try {
    return utf8.decode(fromLatin1(value));
  } catch {
    return value;
  }
}

/**
 * Rejects a non-HTTP answer on its first line instead of waiting for a head
 * that never ends. True once the status line was complete (and good).
 */
function checkStatusLine(buf: Uint8Array): boolean {
  const nl = buf.indexOf(0x0a);
  if (nl === -1) {
    if (buf.length > 1024) throw new HttpParseError("status line longer than 1024 bytes");
    return false;
  }
  statusLine(latin1(buf.subarray(0, nl + 1)));
  return true;
}

/** The status line (with its line end) matched, or the HttpParseError refusing it. */
function statusLine(withEol: string): RegExpExecArray {
  const line = stripEol(withEol);
  const m = STATUS_LINE.exec(line);
  if (!m) throw new HttpParseError(`bad status line ${JSON.stringify(line.slice(0, 80))}`);
  return m;
}

/** RFC 9110 §5.6.2 tchar, by char code (one table lookup per char). */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;
function isTokenChar(c: number): boolean {
  return c < 128 && TCHAR[c] === 1;
}

/** Index just past the empty line ending the head (CRLFCRLF or bare LFs), or -1. */
export function findHeadEnd(buf: Uint8Array, from: number): number {
  for (let i = buf.indexOf(0x0a, from); i !== -1; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}
