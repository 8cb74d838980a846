// Incremental decoder for `Transfer-Encoding: chunked` (RFC 9112 §7.1):
// hex size line (extensions ignored), data, CRLF, ..., zero chunk, trailers.
import { ByteQueue, latin1 } from "./bytes.ts";
import { HttpParseError } from "./http-error.ts";

const MAX_SIZE_LINE = 4096;
const MAX_TRAILER_BYTES = 64 * 1024;
const HEX = /^[0-9a-fA-F]{1,15}$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export interface ChunkedResult {
  /** Decoded body bytes, in order (views into the input). */
  data: Uint8Array[];
  /** The terminating chunk and trailers have been read. */
  done: boolean;
  /** Trailer fields, once done (forwarded nowhere: a Response cannot carry them). */
  trailers: [string, string][];
  /** Bytes after the end of the chunked body. */
  rest: Uint8Array;
  /** Malformed input met after `data` (which is still valid and in order). */
  error?: HttpParseError;
}

type State = "size" | "data" | "data-crlf" | "trailers" | "done";

export class ChunkedDecoder {
  private state: State = "size";
  private remaining = 0;
  private readonly line = new ByteQueue();
  private trailerBytes = 0;
  private readonly trailers: [string, string][] = [];

  get done(): boolean {
    return this.state === "done";
  }

  /** Describes where the body stopped, for "truncated body" errors. */
  get position(): string {
    if (this.state === "data") return `inside a chunk, ${this.remaining} bytes missing`;
    if (this.state === "trailers") return "in the trailers";
    return "before the terminating zero-size chunk";
  }

  feed(input: Uint8Array): ChunkedResult {
    const data: Uint8Array[] = [];
    let i = 0;
    try {
      i = this.run(input, data);
    } catch (e) {
      if (!(e instanceof HttpParseError)) throw e;
      return { data, done: false, trailers: this.trailers, rest: input.subarray(input.length), error: e };
    }
    return { data, done: this.state === "done", trailers: this.trailers, rest: input.subarray(i) };
  }

  private run(input: Uint8Array, data: Uint8Array[]): number {
    let i = 0;
    while (i < input.length && this.state !== "done") {
      switch (this.state) {
        case "data": {
          const n = Math.min(this.remaining, input.length - i);
          data.push(input.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = "data-crlf";
          break;
        }
        case "size":
        case "data-crlf":
        case "trailers": {
          const nl = input.indexOf(0x0a, i);
          if (nl !== -1 && this.line.length === 0) {
            const next = this.plainLine(input, i, nl);
            if (next !== -1) {
              i = next;
              break;
            }
          }
          const end = nl === -1 ? input.length : nl + 1;
          this.line.push(input.subarray(i, end));
          i = end;
          const limit = this.state === "trailers" ? MAX_TRAILER_BYTES - this.trailerBytes : MAX_SIZE_LINE;
          if (this.line.length > limit) {
            throw new HttpParseError(
              this.state === "trailers" ? "chunked trailers too large" : "chunk size line too long",
            );
          }
          if (nl === -1) break;
          this.onLine(stripEol(latin1(this.line.take(this.line.length))));
          break;
        }
      }
    }
    return i;
  }

  /**
   * The common lines read straight from the input: a bare hex size, the CRLF
   * after a chunk, the empty line ending the trailers. Returns the index after
   * the line, or -1 for anything else (extensions, trailers, oddities), which
   * the general path then reads with all its checks.
   */
  private plainLine(input: Uint8Array, start: number, nl: number): number {
    const end = nl > start && input[nl - 1] === 0x0d ? nl - 1 : nl;
    if (this.state !== "size") {
      if (end !== start) return -1;
      if (this.state === "trailers" && nl + 1 - start > MAX_TRAILER_BYTES - this.trailerBytes) return -1;
      if (this.state === "data-crlf") this.state = "size";
      else {
        this.trailerBytes += 2;
        this.state = "done";
      }
      return nl + 1;
    }
    // At most 13 hex digits: always a safe integer (longer sizes take the general path).
    if (end === start || end - start > 13) return -1;
    let size = 0;
    for (let k = start; k < end; k++) {
      const c = input[k]!;
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (d === -1) return -1;
      size = size * 16 + d;
    }
    if (size === 0) this.state = "trailers";
    else {
      this.remaining = size;
      this.state = "data";
    }
    return nl + 1;
  }

  private onLine(line: string): void {
    if (this.state === "data-crlf") {
      if (line !== "") throw new HttpParseError("chunk data longer than its declared size");
      this.state = "size";
      return;
    }
    if (this.state === "size") {
      const semi = line.indexOf(";");
      const sizeText = (semi === -1 ? line : line.slice(0, semi)).replace(/[ \t]+$/, "");
      if (!HEX.test(sizeText)) throw new HttpParseError(`invalid chunk size ${JSON.stringify(line.slice(0, 40))}`);
      const size = parseInt(sizeText, 16);
      if (!Number.isSafeInteger(size)) throw new HttpParseError("chunk size too large");
      if (size === 0) this.state = "trailers";
      else {
        this.remaining = size;
        this.state = "data";
      }
      return;
    }
    // trailers
    this.trailerBytes += line.length + 2;
    if (line === "") {
      this.state = "done";
      return;
    }
    const colon = line.indexOf(":");
    const name = colon === -1 ? "" : line.slice(0, colon);
    if (!TOKEN.test(name)) throw new HttpParseError(`invalid trailer line ${JSON.stringify(line.slice(0, 40))}`);
    this.trailers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
  }
}

/** A line ends in CRLF; a bare LF is tolerated (RFC 9112 §2.2), a stray CR is not. */
export function stripEol(line: string): string {
  let s = line.endsWith("\n") ? line.slice(0, -1) : line;
  if (s.endsWith("\r")) s = s.slice(0, -1);
  if (s.includes("\r")) throw new HttpParseError("bare CR in line");
  return s;
}
