// The byte helpers under the HTTP/1.1 and WebSocket codecs.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteQueue, fromLatin1, latin1 } from "./bytes.ts";

describe("latin1", () => {
  it("property: one char per byte, whatever the bytes (the ASCII fast path and the rest agree)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ max: 0x7f, maxLength: 600 })), (bytes) => {
        const s = latin1(bytes);
        expect(s.length).toBe(bytes.length);
        expect(Array.from(s, (c) => c.charCodeAt(0))).toEqual(Array.from(bytes));
        expect(fromLatin1(s)).toEqual(bytes);
      }),
      { numRuns: 500 },
    );
  });
});

describe("ByteQueue", () => {
  it("holds no buffer until bytes are pushed (a head parsed in one read allocates none)", () => {
    const q = new ByteQueue();
    expect(q.capacity).toBe(0);
    q.push(new Uint8Array([1, 2, 3]));
    expect(q.capacity).toBeGreaterThanOrEqual(3);
    expect(q.take(2)).toEqual(new Uint8Array([1, 2]));
    expect(q.view()).toEqual(new Uint8Array([3]));
  });

  it("gives back a large buffer once emptied, and grows again from nothing", () => {
    const q = new ByteQueue();
    q.push(new Uint8Array(100_000));
    q.consume(100_000);
    expect(q.capacity).toBe(0);
    q.push(new Uint8Array([7]));
    expect(q.view()).toEqual(new Uint8Array([7]));
  });
});
