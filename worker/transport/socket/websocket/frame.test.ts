import { describe, expect, it } from "vitest";
import { concat } from "../bytes.ts";
import { encodeFrame, FrameDecoder, Opcode } from "./frame.ts";
import { closePayload, MessageAssembler } from "./message.ts";

const serverSide = () => new MessageAssembler({ maxMessageBytes: 1 << 20, expectMasked: false });

describe("frame codec", () => {
  it("round-trips payload sizes across the 7-bit, 16-bit and 64-bit length forms, masked or not", () => {
    for (const size of [0, 1, 125, 126, 127, 65535, 65536, 200_000]) {
      const payload = new Uint8Array(size).map((_, i) => (i * 7) % 256);
      for (const mask of [undefined, Uint8Array.of(9, 8, 7, 6)]) {
        const wire = encodeFrame(Opcode.Binary, payload, { mask });
        const [frame, ...more] = new FrameDecoder(1 << 20).feed(wire);
        expect(more).toEqual([]);
        expect(frame).toMatchObject({ fin: true, rsv: 0, opcode: Opcode.Binary, masked: mask !== undefined });
        expect(frame!.payload).toEqual(payload);
      }
    }
  });

  it("masks every payload byte with the key (RFC 6455 §5.7 example)", () => {
    const wire = encodeFrame(Opcode.Text, new TextEncoder().encode("Hello"), { mask: Uint8Array.of(0x37, 0xfa, 0x21, 0x3d) });
    expect([...wire]).toEqual([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
  });

  it("decodes frames split at every byte boundary", () => {
    const wire = concat([
      encodeFrame(Opcode.Text, new TextEncoder().encode("héllo "), { fin: false }),
      encodeFrame(Opcode.Ping, new TextEncoder().encode("p")),
      encodeFrame(Opcode.Continuation, new TextEncoder().encode("wörld".repeat(40))),
    ]);
    for (let i = 0; i <= wire.length; i++) {
      const dec = new FrameDecoder(1 << 20);
      const asm = serverSide();
      const msgs = [...dec.feed(wire.subarray(0, i)), ...dec.feed(wire.subarray(i))].map((f) => asm.push(f));
      expect(msgs).toEqual([
        null,
        { type: "ping", payload: new TextEncoder().encode("p") },
        { type: "text", data: "héllo " + "wörld".repeat(40) },
      ]);
    }
  });

  it("refuses frames over the size limit from their header alone", () => {
    const header = Uint8Array.of(0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0);
    expect(() => new FrameDecoder(1 << 20).feed(header)).toThrow(expect.objectContaining({ code: 1009 }));
  });
});

describe("message assembly enforces the protocol", () => {
  const frame = (opcode: number, payload: number[] | string, fin = true, extra: object = {}) => ({
    fin,
    rsv: 0,
    opcode,
    masked: false,
    payload: typeof payload === "string" ? new TextEncoder().encode(payload) : Uint8Array.from(payload),
    ...extra,
  });
  const cases: [string, ReturnType<typeof frame>[], number][] = [
    ["masked server frame", [frame(Opcode.Text, "x", true, { masked: true })], 1002],
    ["reserved bits", [frame(Opcode.Text, "x", true, { rsv: 4 })], 1002],
    ["continuation first", [frame(Opcode.Continuation, "x")], 1002],
    ["data frame inside a fragmented message", [frame(Opcode.Text, "a", false), frame(Opcode.Binary, "b")], 1002],
    ["fragmented ping", [frame(Opcode.Ping, "x", false)], 1002],
    ["long ping", [frame(Opcode.Ping, "x".repeat(126))], 1002],
    ["reserved opcode", [frame(0x3, "x")], 1002],
    ["invalid UTF-8", [frame(Opcode.Text, [0xc3, 0x28])], 1007],
    ["close with 1 byte", [frame(Opcode.Close, [3])], 1002],
    ["close with code 1005", [frame(Opcode.Close, [0x03, 0xed])], 1002],
    ["message over the limit", [frame(Opcode.Binary, new Array(700_000).fill(0), false), frame(Opcode.Continuation, new Array(400_000).fill(0))], 1009],
  ];
  for (const [name, frames, code] of cases) {
    it(`${name} → close ${code}`, () => {
      const asm = serverSide();
      expect(() => frames.forEach((f) => asm.push(f))).toThrow(expect.objectContaining({ code }));
    });
  }

  it("reads close codes and reasons, and an empty close as 'no status'", () => {
    expect(serverSide().push(frame(Opcode.Close, [...closePayload(4001, "bye")]))).toEqual({
      type: "close",
      code: 4001,
      reason: "bye",
    });
    expect(serverSide().push(frame(Opcode.Close, []))).toEqual({ type: "close", code: null, reason: "" });
  });

  it("cuts a close reason to 123 bytes without splitting a character", () => {
    const p = closePayload(1000, "é".repeat(100));
    expect(p.length).toBe(2 + 122);
    expect(new TextDecoder().decode(p.subarray(2))).toBe("é".repeat(61));
  });
});

describe("frame decoder memory", () => {
  it("gives back its receive buffer after a large frame", () => {
    const dec = new FrameDecoder(8 << 20);
    const big = encodeFrame(Opcode.Binary, new Uint8Array(4 << 20));
    // Arriving in socket-sized reads, as it would.
    for (let i = 0; i < big.length; i += 64 * 1024) dec.feed(big.subarray(i, i + 64 * 1024));
    const [small] = dec.feed(encodeFrame(Opcode.Text, new TextEncoder().encode("after")));
    expect(new TextDecoder().decode(small!.payload)).toBe("after");
    expect(dec.bufferedCapacity).toBeLessThanOrEqual(64 * 1024);
  });
});
