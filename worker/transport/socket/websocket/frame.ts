// WebSocket frames (RFC 6455 §5.2): encoding with a masking key (a client must
// mask every frame it sends) and incremental decoding of the origin's frames.
import { ByteQueue } from "../bytes.ts";

export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** Ends the connection with a close code (1002 protocol error, 1007 bad UTF-8, 1009 too big). */
export class WebSocketProtocolError extends Error {
  override readonly name = "WebSocketProtocolError";
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Frame {
  fin: boolean;
  /** RSV1..3 as a 3-bit number; must be 0 without negotiated extensions. */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Unmasked payload. */
  payload: Uint8Array;
}

export interface EncodeOptions {
  fin?: boolean;
  /** 4-byte masking key; frames from a client must carry one. */
  mask?: Uint8Array;
}

export function encodeFrame(opcode: number, payload: Uint8Array, opts: EncodeOptions = {}): Uint8Array {
  const fin = opts.fin ?? true;
  const mask = opts.mask;
  const len = payload.length;
  const extra = len < 126 ? 0 : len < 0x10000 ? 2 : 8;
  const headerLen = 2 + extra + (mask ? 4 : 0);
  const out = new Uint8Array(headerLen + len);
  out[0] = (fin ? 0x80 : 0) | (opcode & 0x0f);
  out[1] = (mask ? 0x80 : 0) | (extra === 0 ? len : extra === 2 ? 126 : 127);
  const view = new DataView(out.buffer);
  if (extra === 2) view.setUint16(2, len);
  if (extra === 8) view.setBigUint64(2, BigInt(len));
  if (mask) {
    out.set(mask, 2 + extra);
    for (let i = 0; i < len; i++) out[headerLen + i] = payload[i]! ^ mask[i & 3]!;
  } else {
    out.set(payload, headerLen);
  }
  return out;
}

export function newMask(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(4));
}

export class FrameDecoder {
  private readonly queue = new ByteQueue();

  constructor(private readonly maxPayloadBytes: number) {}

  /** Bytes held for frames still incomplete (allocated, not just used). */
  get bufferedCapacity(): number {
    return this.queue.capacity;
  }

  /** Frames completed by these bytes; throws WebSocketProtocolError. */
  feed(bytes: Uint8Array): Frame[] {
    this.queue.push(bytes);
    const frames: Frame[] = [];
    for (;;) {
      const frame = this.next();
      if (!frame) return frames;
      frames.push(frame);
    }
  }

  private next(): Frame | undefined {
    const q = this.queue;
    if (q.length < 2) return undefined;
    const b0 = q.at(0);
    const b1 = q.at(1);
    const masked = (b1 & 0x80) !== 0;
    let len = b1 & 0x7f;
    let offset = 2;
    if (len === 126) {
      if (q.length < 4) return undefined;
      len = (q.at(2) << 8) | q.at(3);
      offset = 4;
    } else if (len === 127) {
      if (q.length < 10) return undefined;
      if (q.at(2) & 0x80) throw new WebSocketProtocolError(1002, "frame length has the most significant bit set");
      let big = 0;
      for (let i = 2; i < 10; i++) big = big * 256 + q.at(i);
      len = big;
      offset = 10;
    }
    if (len > this.maxPayloadBytes) {
      throw new WebSocketProtocolError(1009, `frame of ${len} bytes exceeds ${this.maxPayloadBytes}`);
    }
    const maskAt = offset;
    if (masked) offset += 4;
    if (q.length < offset + len) return undefined;
    const header = q.take(offset);
    const payload = q.take(len);
    if (masked) {
      for (let i = 0; i < len; i++) payload[i]! ^= header[maskAt + (i & 3)]!;
    }
    return { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 0x7, opcode: b0 & 0x0f, masked, payload };
  }
}
