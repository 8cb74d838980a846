// Reassembles frames into messages and enforces the protocol rules a
// well-behaved server keeps (RFC 6455 §5.4, §5.5, §7.4): continuation order,
// small unfragmented control frames, UTF-8 text, valid close codes.
import { concat } from "../bytes.ts";
import { type Frame, Opcode, WebSocketProtocolError } from "./frame.ts";

export type Message =
  | { type: "text"; data: string }
  | { type: "binary"; data: Uint8Array }
  | { type: "ping"; payload: Uint8Array }
  | { type: "pong"; payload: Uint8Array }
  /** code null: the close frame carried no status (the peer sees 1005). */
  | { type: "close"; code: number | null; reason: string };

export interface AssemblerOptions {
  maxMessageBytes: number;
  /** Frames from a server are never masked; frames from a client always are. */
  expectMasked: boolean;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Codes an endpoint may put in a close frame (1005, 1006, 1015 are reserved for reporting). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

export function closePayload(code: number | null, reason = ""): Uint8Array {
  if (code === null) return new Uint8Array(0);
  // Reasons are at most 123 bytes so the frame stays a control frame; cut at a char boundary.
  let r = new TextEncoder().encode(reason);
  if (r.length > 123) r = new TextEncoder().encode(truncateUtf8(reason, 123));
  const out = new Uint8Array(2 + r.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(r, 2);
  return out;
}

function truncateUtf8(s: string, maxBytes: number): string {
  let out = "";
  let n = 0;
  for (const ch of s) {
    const b = new TextEncoder().encode(ch).length;
    if (n + b > maxBytes) break;
    out += ch;
    n += b;
  }
  return out;
}

export class MessageAssembler {
  private fragments: Uint8Array[] = [];
  private fragmentOpcode: number | null = null;
  private fragmentBytes = 0;

  constructor(private readonly opts: AssemblerOptions) {}

  push(frame: Frame): Message | null {
    if (frame.rsv !== 0) throw new WebSocketProtocolError(1002, "reserved bits set without a negotiated extension");
    if (frame.masked !== this.opts.expectMasked) {
      throw new WebSocketProtocolError(1002, frame.masked ? "server frames must not be masked" : "client frames must be masked");
    }
    const { opcode, payload } = frame;
    if (opcode >= 0x8) {
      if (!frame.fin) throw new WebSocketProtocolError(1002, "fragmented control frame");
      if (payload.length > 125) throw new WebSocketProtocolError(1002, "control frame longer than 125 bytes");
      if (opcode === Opcode.Ping) return { type: "ping", payload };
      if (opcode === Opcode.Pong) return { type: "pong", payload };
      if (opcode === Opcode.Close) return parseClose(payload);
      throw new WebSocketProtocolError(1002, `reserved control opcode ${opcode}`);
    }
    if (opcode === Opcode.Continuation) {
      if (this.fragmentOpcode === null) throw new WebSocketProtocolError(1002, "continuation frame without a message");
    } else if (opcode === Opcode.Text || opcode === Opcode.Binary) {
      if (this.fragmentOpcode !== null) throw new WebSocketProtocolError(1002, "new message inside a fragmented one");
      this.fragmentOpcode = opcode;
    } else {
      throw new WebSocketProtocolError(1002, `reserved data opcode ${opcode}`);
    }
    this.fragmentBytes += payload.length;
    if (this.fragmentBytes > this.opts.maxMessageBytes) {
      throw new WebSocketProtocolError(1009, `message larger than ${this.opts.maxMessageBytes} bytes`);
    }
    this.fragments.push(payload);
    if (!frame.fin) return null;
    const data = this.fragments.length === 1 ? this.fragments[0]! : concat(this.fragments);
    const type = this.fragmentOpcode;
    this.fragments = [];
    this.fragmentOpcode = null;
    this.fragmentBytes = 0;
    if (type === Opcode.Binary) return { type: "binary", data };
    try {
      return { type: "text", data: utf8.decode(data) };
    } catch {
      throw new WebSocketProtocolError(1007, "text message is not valid UTF-8");
    }
  }
}

function parseClose(payload: Uint8Array): Message {
  if (payload.length === 0) return { type: "close", code: null, reason: "" };
  if (payload.length === 1) throw new WebSocketProtocolError(1002, "close frame with a 1-byte payload");
  const code = (payload[0]! << 8) | payload[1]!;
  if (!isSendableCloseCode(code)) throw new WebSocketProtocolError(1002, `invalid close code ${code}`);
  let reason: string;
  try {
    reason = utf8.decode(payload.subarray(2));
  } catch {
    throw new WebSocketProtocolError(1007, "close reason is not valid UTF-8");
  }
  return { type: "close", code, reason };
}
