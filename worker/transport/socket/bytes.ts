// Small byte helpers shared by the HTTP/1.1 and WebSocket codecs.

const EMPTY = new Uint8Array(0);

/**
 * An append-only buffer that grows by doubling, so feeding a parser one byte
 * at a time stays linear. `consume` drops bytes from the front.
 */
export class ByteQueue {
  private static readonly INITIAL = 256;
  /** Past this, an emptied buffer is given back (one large message must not pin its size for good). */
  private static readonly KEEP = 64 * 1024;
  /** Allocated on the first push: most parsers see the whole head in one read and never buffer. */
  private buf: Uint8Array = EMPTY;
  private start = 0;
  private end = 0;

  get length(): number {
    return this.end - this.start;
  }

  /** Bytes allocated, used or not. */
  get capacity(): number {
    return this.buf.length;
  }

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.end + bytes.length > this.buf.length) {
      const needed = this.length + bytes.length;
      if (needed <= this.buf.length && this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        let size = Math.max(this.buf.length, ByteQueue.INITIAL);
        while (size < needed) size *= 2;
        const next = new Uint8Array(size);
        next.set(this.buf.subarray(this.start, this.end));
        this.buf = next;
      }
      this.end -= this.start;
      this.start = 0;
    }
    this.buf.set(bytes, this.end);
    this.end += bytes.length;
  }

  /** A view of the buffered bytes; valid until the next push or consume. */
  view(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  at(i: number): number {
    return this.buf[this.start + i]!;
  }

  /** Removes and returns (a copy of) the first n bytes. */
  take(n: number): Uint8Array {
    const out = this.buf.slice(this.start, this.start + n);
    this.consume(n);
    return out;
  }

  consume(n: number): void {
    this.start += n;
    if (this.start === this.end) {
      this.start = this.end = 0;
      if (this.buf.length > ByteQueue.KEEP) this.buf = EMPTY;
    }
  }
}

const ascii = new TextDecoder();

/** Bytes to a string one char per byte (HTTP heads are octets, not UTF-8). */
export function latin1(bytes: Uint8Array): string {
  // Heads are almost always ASCII, where UTF-8 decoding (native, one call) gives the same string.
  let high = false;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! > 0x7f) {
      high = true;
      break;
    }
  }
  if (!high) return ascii.decode(bytes);
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** A string of chars <= 0xFF to bytes, one byte per char. */
export function fromLatin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
