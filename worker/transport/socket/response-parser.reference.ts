// The response parser as it was before issue 14's one-pass head parser: kept
// only as the oracle of codec.property.test.ts (the rewrite must accept and
// refuse exactly what this did, with the same messages). Not used at run time.
import { ByteQueue, fromLatin1, latin1 } from "./bytes.ts";
import { ChunkedDecoder, stripEol } from "./chunked.ts";
import { HttpParseError } from "./http-error.ts";

const DEFAULT_MAX_HEAD_BYTES = 64 * 1024;

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible chars, obs-text, SP and HTAB (no CTLs).
const FIELD_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;
const DIGITS = /^\d+$/;

type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" }
  /** 101 Switching Protocols: every later byte belongs to the new protocol. */
  | { kind: "upgrade" };

interface ResponseHead {
  version: "1.0" | "1.1";
  status: number;
  statusText: string;
  /** Field names lowercased, in arrival order, repeats kept (Set-Cookie). */
  headers: [string, string][];
  framing: BodyFraming;
}

type ResponseEvent =
  | { kind: "head"; head: ResponseHead }
  | { kind: "data"; bytes: Uint8Array }
  | { kind: "end"; trailers: [string, string][] }
  /**
   * The body went wrong after the head was complete. Reported as an event
   * (not thrown) so the head parsed from the same bytes is not lost: whether
   * the client gets a 502 or a broken body must not depend on TCP segmentation.
   */
  | { kind: "error"; error: HttpParseError };

interface ResponseParserOptions {
  /** The request method: a response to HEAD has no body whatever it says. */
  method: string;
  maxHeadBytes?: number;
}

type State = "head" | "body" | "done" | "failed";

export class ReferenceResponseParser {
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
    const before = this.head.length;
    this.head.push(input);
    if (!this.statusLineChecked) this.checkStatusLine();
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
    const head = this.parseHead(text);
    if (head.status >= 100 && head.status < 200 && head.status !== 101) {
      return input.subarray(consumedFromInput); // interim response (100 Continue, 103 Early Hints): skip
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
    return input.subarray(consumedFromInput);
  }

  /** Rejects a non-HTTP answer on its first line instead of waiting for a head that never ends. */
  private checkStatusLine(): void {
    const buf = this.head.view();
    const nl = buf.indexOf(0x0a);
    if (nl === -1) {
      if (buf.length > 1024) throw new HttpParseError("status line longer than 1024 bytes");
      return;
    }
    const line = stripEol(latin1(buf.subarray(0, nl + 1)));
    if (!STATUS_LINE.test(line)) throw new HttpParseError(`bad status line ${JSON.stringify(line.slice(0, 80))}`);
    this.statusLineChecked = true;
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

  private parseHead(text: string): ResponseHead {
    const lines = text.split("\n").map((l) => stripEol(l + "\n"));
    // The head ends with an empty line; split leaves ["...", "", ""].
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    const statusLine = lines[0] ?? "";
    const m = STATUS_LINE.exec(statusLine);
    if (!m) throw new HttpParseError(`bad status line ${JSON.stringify(statusLine.slice(0, 80))}`);
    const status = Number(m[2]);
    if (status < 100 || status > 599) throw new HttpParseError(`status code ${status} out of range`);
    const headers: [string, string][] = [];
    for (const line of lines.slice(1)) {
      if (line.startsWith(" ") || line.startsWith("\t")) {
        throw new HttpParseError("obsolete line folding in response headers");
      }
      const colon = line.indexOf(":");
      const name = colon === -1 ? line : line.slice(0, colon);
      if (colon === -1 || !TOKEN.test(name)) {
        throw new HttpParseError(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
      }
      const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
      if (!FIELD_VALUE.test(value)) throw new HttpParseError(`bad value in header ${name}`);
      headers.push([name.toLowerCase(), nonAscii(value)]);
    }
    return {
      version: m[1] === "0" ? "1.0" : "1.1",
      status,
      statusText: nonAscii(m[3] ?? ""),
      headers,
      framing: this.framingFor(status, headers),
    };
  }

  private framingFor(status: number, headers: [string, string][]): BodyFraming {
    if (status === 101) return { kind: "upgrade" };
    if (this.method === "HEAD" || status < 200 || status === 204 || status === 304) return { kind: "none" };
    const te = headers.filter(([n]) => n === "transfer-encoding").map(([, v]) => v);
    const cl = headers.filter(([n]) => n === "content-length").map(([, v]) => v);
    if (te.length > 0) {
      // Both framings at once is how response smuggling starts: refuse it.
      if (cl.length > 0) throw new HttpParseError("both Transfer-Encoding and Content-Length");
      const codings = te
        .join(",")
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
    if (cl.length > 0) {
      const values = cl.join(",").split(",").map((v) => v.trim());
      const first = values[0]!;
      if (!values.every((v) => DIGITS.test(v))) throw new HttpParseError(`invalid Content-Length ${JSON.stringify(cl.join(", "))}`);
      if (!values.every((v) => Number(v) === Number(first))) {
        throw new HttpParseError(`conflicting Content-Length values ${JSON.stringify(cl.join(", "))}`);
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

/** Index just past the empty line ending the head (CRLFCRLF or bare LFs), or -1. */
function findHeadEnd(buf: Uint8Array, from: number): number {
  for (let i = buf.indexOf(0x0a, from); i !== -1; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}
