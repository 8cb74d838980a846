import { describe, expect, it } from "vitest";
import { concat, fromLatin1, latin1 } from "./bytes.ts";
import { ChunkedDecoder } from "./chunked.ts";
import { encodeChunk, lastChunk } from "./request-head.ts";

function decodeAll(pieces: Uint8Array[]) {
  const d = new ChunkedDecoder();
  const data: Uint8Array[] = [];
  let rest: Uint8Array = new Uint8Array(0);
  for (const p of pieces) {
    const r = d.feed(p);
    if (r.error) throw r.error;
    data.push(...r.data.map((x) => x.slice()));
    if (r.done) rest = concat([rest, r.rest]);
  }
  return { body: latin1(concat(data)), done: d.done, rest: latin1(rest) };
}

describe("ChunkedDecoder", () => {
  it("round-trips what encodeChunk produces, at every split point", () => {
    const wire = concat([
      encodeChunk(fromLatin1("a".repeat(300))),
      encodeChunk(fromLatin1("\r\n0\r\n")),
      lastChunk(),
      fromLatin1("NEXT"),
    ]);
    for (let i = 0; i <= wire.length; i++) {
      const r = decodeAll([wire.subarray(0, i), wire.subarray(i)]);
      expect(r.body).toBe("a".repeat(300) + "\r\n0\r\n");
      expect(r.done).toBe(true);
      expect(r.rest).toBe("NEXT");
    }
  });

  it("accepts upper- and lowercase hex and chunk extensions", () => {
    expect(decodeAll([fromLatin1("A;name=\"v\"\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n")]).body).toBe(
      "01234567890123456789a",
    );
  });

  it("keeps the data decoded before a malformed size line", () => {
    const r = new ChunkedDecoder().feed(fromLatin1("3\r\nabc\r\n3x\r\n"));
    expect(latin1(concat(r.data))).toBe("abc");
    expect(r.error?.message).toMatch(/invalid chunk size "3x"/);
  });

  it("refuses trailers larger than 64 KiB", () => {
    const d = new ChunkedDecoder();
    d.feed(fromLatin1("0\r\n"));
    let error: Error | undefined;
    for (let i = 0; i < 100 && !error; i++) error = d.feed(fromLatin1(`X-T${i}: ${"t".repeat(1000)}\r\n`)).error;
    expect(error?.message).toBe("chunked trailers too large");
  });
});
