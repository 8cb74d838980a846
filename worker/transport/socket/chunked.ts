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
