// Property tests (fast-check) for the HTTP/1.1 codecs of the socket
// transport: the response parser and the chunked encoder/decoder. Whatever
// bytes an origin sends, however TCP cuts them, the parser ends in exactly one
// of two ways (a clean response, or an HttpParseError that becomes a 502),
// never throws anything else, and never depends on where the cuts fell.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { concat, latin1 } from "./bytes.ts";
import { ChunkedDecoder } from "./chunked.ts";
import { HttpParseError } from "./http-error.ts";
import { encodeChunk, lastChunk } from "./request-head.ts";
import { ResponseParser } from "./response-parser.ts";

type Outcome =
  | { kind: "response"; status: number; headers: [string, string][]; body: string }
  | { kind: "error" };

/** Feeds the pieces, then EOF. Anything thrown that is not an HttpParseError fails the property. */
function run(pieces: Uint8Array[], method = "GET"): Outcome {
  const p = new ResponseParser({ method, maxHeadBytes: 4096 });
  let head: { status: number; headers: [string, string][] } | undefined;
  let ended = false;
  const body: Uint8Array[] = [];
  try {
    const take = (events: ReturnType<ResponseParser["feed"]>) => {
      for (const e of events) {
        if (e.kind === "head") {
          if (head) throw new Error("two heads in one response");
          head = e.head;
        } else if (e.kind === "data") {
          if (ended) throw new Error("data after the end");
          body.push(e.bytes.slice());
        } else if (e.kind === "end") ended = true;
        else throw e.error;
      }
    };
    for (const piece of pieces) {
      take(p.feed(piece));
      if (ended) break; // the transport stops reading at the end of the response
    }
    if (!ended) take(p.finish());
  } catch (e) {
    if (e instanceof HttpParseError) return { kind: "error" };
    throw e;
  }
  if (!head || !ended) throw new Error("neither a complete response nor an error");
  return { kind: "response", status: head.status, headers: head.headers, body: latin1(concat(body)) };
}

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function cut(bytes: Uint8Array, at: number[]): Uint8Array[] {
  const points = [...new Set(at.map((i) => i % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/).filter((n) => !["content-length", "transfer-encoding"].includes(n));
const fieldValue = fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/);
const bodyText = fc.string({ unit: "binary-ascii", maxLength: 200 });

/** A well-formed response and what a client must see of it. */
const validResponse = fc
  .record({
    status: fc.integer({ min: 200, max: 599 }).filter((s) => s !== 204 && s !== 304),
    headers: fc.array(fc.tuple(token, fieldValue), { maxLength: 5 }),
    body: bodyText,
    framing: fc.constantFrom("length", "chunked", "close"),
    chunkSizes: fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 10 }),
    interim: fc.boolean(),
  })
  .map((r) => {
    let wire = r.interim ? "HTTP/1.1 100 Continue\r\n\r\n" : "";
    wire += `HTTP/1.1 ${r.status} X\r\n`;
    for (const [n, v] of r.headers) wire += `${n}: ${v}\r\n`;
    if (r.framing === "length") wire += `content-length: ${r.body.length}\r\n\r\n${r.body}`;
    else if (r.framing === "close") wire += `\r\n${r.body}`;
    else {
      wire += "transfer-encoding: chunked\r\n\r\n";
      let at = 0;
      for (const size of [...r.chunkSizes, r.body.length]) {
        if (at >= r.body.length) break;
        const piece = r.body.slice(at, at + size);
        at += piece.length;
        wire += latin1(encodeChunk(enc(piece)));
      }
      wire += "0\r\n\r\n";
    }
    return { wire: enc(wire), expected: r };
  });

const splitPoints = fc.array(fc.nat(), { maxLength: 8 });

describe("response parser properties", () => {
  it("parses any well-formed response the same at every segmentation", () => {
    fc.assert(
      fc.property(validResponse, splitPoints, ({ wire, expected }, at) => {
        const out = run(cut(wire, at));
        expect(out).toEqual({
          kind: "response",
          status: expected.status,
          headers: expected.headers.map(([n, v]) => [n, v]).concat(
            expected.framing === "length"
              ? [["content-length", String(expected.body.length)]]
              : expected.framing === "chunked"
                ? [["transfer-encoding", "chunked"]]
                : [],
          ),
          body: expected.body,
        });
      }),
      { numRuns: 300 },
    );
  });

  it("random bytes end as a response or an HttpParseError, the same for any segmentation", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), splitPoints, splitPoints, (bytes, a, b) => {
        expect(run(cut(bytes, a))).toEqual(run(cut(bytes, b)));
      }),
      { numRuns: 300 },
    );
  });

  it("mutated responses (bytes flipped, inserted, deleted) never crash and never depend on segmentation", () => {
    const mutation = fc.tuple(fc.constantFrom("flip", "insert", "delete", "truncate"), fc.nat(), fc.integer({ min: 0, max: 255 }));
    const special = fc.constantFrom(0x0d, 0x0a, 0x3a, 0x20, 0x00, 0x30, 0x3b);
    fc.assert(
      fc.property(
        validResponse,
        fc.array(fc.tuple(mutation, fc.option(special)), { minLength: 1, maxLength: 4 }),
        splitPoints,
        splitPoints,
        fc.constantFrom("GET", "HEAD"),
        ({ wire }, mutations, a, b, method) => {
          let bytes = [...wire];
          for (const [[op, pos, value], sp] of mutations) {
            const i = bytes.length === 0 ? 0 : pos % bytes.length;
            const v = sp ?? value;
            if (op === "flip") bytes[i] = v;
            else if (op === "insert") bytes.splice(i, 0, v);
            else if (op === "delete") bytes.splice(i, 1);
            else bytes = bytes.slice(0, i);
          }
          const mutated = Uint8Array.from(bytes);
          expect(run(cut(mutated, a), method)).toEqual(run(cut(mutated, b), method));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("a response followed by another one yields only the first (no desync into the next)", () => {
    fc.assert(
      fc.property(validResponse, validResponse, splitPoints, (first, second, at) => {
        fc.pre(first.expected.framing !== "close");
        const out = run(cut(concat([first.wire, second.wire]), at));
        expect(out).toMatchObject({ kind: "response", status: first.expected.status, body: first.expected.body });
      }),
      { numRuns: 200 },
    );
  });
});

describe("chunked encoder and decoder properties", () => {
  it("what encodeChunk writes decodes to the same bytes at any segmentation, leaving what follows", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 8 }), fc.uint8Array({ maxLength: 20 }), splitPoints, (chunks, after, at) => {
        const wire = concat([...chunks.map(encodeChunk), lastChunk(), after]);
        const d = new ChunkedDecoder();
        const data: Uint8Array[] = [];
        const rest: Uint8Array[] = [];
        for (const piece of cut(wire, at)) {
          if (d.done) {
            rest.push(piece);
            continue;
          }
          const r = d.feed(piece);
          expect(r.error).toBeUndefined();
          data.push(...r.data.map((x) => x.slice()));
          if (r.done) rest.push(r.rest.slice());
        }
        expect(d.done).toBe(true);
        expect([...concat(data)]).toEqual([...concat(chunks)]);
        expect([...concat(rest)]).toEqual([...after]);
      }),
      { numRuns: 300 },
    );
  });

  it("random bytes never make the decoder throw: data, done, or an HttpParseError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), splitPoints, (bytes, at) => {
        const d = new ChunkedDecoder();
        for (const piece of cut(bytes, at)) {
          if (d.done) break;
          const r = d.feed(piece);
          if (r.error) {
            expect(r.error).toBeInstanceOf(HttpParseError);
            break;
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
