import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { headEnd, parseRequestHead, parseRequestHeadByChar, RequestHeadError, sameName, type ParsedRequestHead } from "./index.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");
const parse = (s: string, max?: number) => parseRequestHead(bytes(s), max);
const status = (s: string): number | "ok" | "incomplete" => {
  try {
    return parse(s) === null ? "incomplete" : "ok";
  } catch (e) {
    if (e instanceof RequestHeadError) return e.status;
    throw e;
  }
};

describe("request head", () => {
  it("reads method, target as sent, fields in order with repeats, framing, and where the head ends", () => {
    const text = "POST /a%20b?x=1 HTTP/1.1\r\nHost: app.example.com\r\nX-A:  one \r\nx-a: two\r\nContent-Length: 5\r\n\r\n";
    const head = parse(`${text}hello`)!;
    expect(head).toEqual<ParsedRequestHead>({
      method: "POST",
      target: "/a%20b?x=1",
      rawHeaders: ["Host", "app.example.com", "X-A", "one", "x-a", "two", "Content-Length", "5"],
      framing: { kind: "length", length: 5 },
      upgrade: false,
      close: false,
      headBytes: text.length,
    });
  });

  it("says when the client closes, when it upgrades, and a chunked body", () => {
    expect(parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n")!.close).toBe(true);
    expect(parse("GET / HTTP/1.0\r\n\r\n")!.close).toBe(true);
    expect(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")!.close).toBe(false);
    expect(parse("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")!.upgrade).toBe(true);
    expect(parse("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")!.upgrade).toBe(false);
    expect(parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n")!.framing).toEqual({ kind: "chunked" });
    expect(parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")!.framing).toEqual({ kind: "none" });
  });

  it("refuses every framing two parsers could read differently (request smuggling): 400", () => {
    const refused = [
      "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 4, 4\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 0x4\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nX: a\r\n Transfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nX: a\r\n\tfolded\r\n\r\n",
      "POST / HTTP/1.1\nHost: a\n\n",
      "POST / HTTP/1.1\r\nHost: a\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\x7fb\r\n\r\n",
      "POST / HTTP/1.1\r\n: empty name\r\n\r\n",
      "POST / HTTP/1.1\r\nno colon\r\n\r\n",
      "POST /  HTTP/1.1\r\n\r\n",
      "POST / HTTP/2.0\r\n\r\n",
      "POST / http/1.1\r\n\r\n",
      "PO ST / HTTP/1.1\r\n\r\n",
      "GET /\x80 HTTP/1.1\r\n\r\n",
    ];
    for (const head of refused) expect([JSON.stringify(head), status(head)]).toEqual([JSON.stringify(head), 400]);
  });

  it("refuses a bare LF at once, without waiting for the rest of the head", () => {
    expect(status("GET / HTTP/1.1\nHo")).toBe(400);
    expect(status("GET / HTTP/1.1\r")).toBe("incomplete");
  });

  it("bounds the head: 431 past the limit, complete or not", () => {
    expect(() => parse(`GET / HTTP/1.1\r\nX: ${"a".repeat(200)}\r\n\r\n`, 100)).toThrow(expect.objectContaining({ status: 431 }));
    expect(() => parse(`GET / HTTP/1.1\r\nX: ${"a".repeat(200)}`, 100)).toThrow(expect.objectContaining({ status: 431 }));
    expect(parse(`GET / HTTP/1.1\r\nX: ${"a".repeat(50)}`, 100)).toBeNull();
  });

  it("skips a few empty lines before the request line (a client's stray CRLF after a body)", () => {
    expect(parse("\r\n\r\nGET / HTTP/1.1\r\n\r\n")!.headBytes).toBe(22);
  });
});

// Heads built from parts the edge may send: token methods, visible-ASCII targets, token names, values with obs-text.
const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
const value = fc.stringMatching(/^[\x21-\x7e\x80-\xff]([\x20-\x7e\x80-\xff\t]{0,30}[\x21-\x7e\x80-\xff])?$/);
const field = fc.tuple(token, value).filter(([n]) => !/^(content-length|transfer-encoding|connection|upgrade)$/i.test(n));
const head = fc.record({
  method: token,
  target: fc.stringMatching(/^\/[\x21-\x7e]{0,40}$/),
  fields: fc.array(field, { maxLength: 8 }),
  body: fc.option(fc.oneof(fc.nat({ max: 1e6 }).map((n) => ["Content-Length", String(n)] as const), fc.constant(["Transfer-Encoding", "chunked"] as const)), { nil: undefined }),
});
const serialize = (h: { method: string; target: string; fields: [string, string][]; body: readonly [string, string] | undefined }) =>
  `${h.method} ${h.target} HTTP/1.1\r\n${[...h.fields, ...(h.body ? [h.body] : [])].map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;

describe("request head, properties", () => {
  it("reads back what was sent, whatever follows it (a body, a pipelined request)", () => {
    fc.assert(
      fc.property(head, fc.uint8Array({ maxLength: 64 }), (h, after) => {
        const text = serialize(h);
        const parsed = parseRequestHead(Buffer.concat([bytes(text), after]))!;
        expect(parsed.method).toBe(h.method);
        expect(parsed.target).toBe(h.target);
        expect(parsed.rawHeaders).toEqual([...h.fields, ...(h.body ? [h.body] : [])].flat());
        expect(parsed.headBytes).toBe(text.length);
      }),
      { numRuns: 300 },
    );
  });

  it("a head split at any byte is incomplete until its last byte, then the same head", () => {
    fc.assert(
      fc.property(head, (h) => {
        const buf = bytes(serialize(h));
        const whole = parseRequestHead(buf);
        for (let i = 0; i < buf.length; i++) expect(parseRequestHead(buf.subarray(0, i))).toBeNull();
        expect(whole).not.toBeNull();
      }),
      { numRuns: 100 },
    );
  });

  it("any bytes: a head, not yet, or a 400/431, never another error; and a LF anywhere in a field is never taken as part of a value", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 40 }), (noise, tail) => {
        const input = Buffer.concat([bytes("GET / HTTP/1.1\r\nX: "), noise, tail]);
        try {
          const h = parseRequestHead(input, 256);
          if (h) {
            expect(h.headBytes).toBeLessThanOrEqual(input.length);
            for (const v of h.rawHeaders) expect(v).not.toMatch(/[\r\n\0]/);
          }
        } catch (e) {
          expect(e).toBeInstanceOf(RequestHeadError);
          expect([400, 431]).toContain((e as RequestHeadError).status);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("a smuggled second framing field anywhere among the fields is refused", () => {
    fc.assert(
      fc.property(head, fc.nat(), fc.constantFrom(["Content-Length", "3"], ["Transfer-Encoding", "chunked"], ["content-length", "7"]), (h, at, extra) => {
        fc.pre(h.body !== undefined);
        const fields: [string, string][] = [...h.fields, h.body as [string, string]];
        fields.splice(at % (fields.length + 1), 0, extra as [string, string]);
        const text = `${h.method} ${h.target} HTTP/1.1\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
        // Two Transfer-Encoding: chunked fields read as "chunked, chunked": refused as well.
        expect(() => parseRequestHead(bytes(text))).toThrow(expect.objectContaining({ status: 400 }));
      }),
      { numRuns: 300 },
    );
  });
});

describe("the head's end, found line by line", () => {
  /** The byte-by-byte loop it replaced: the reference for every decision. */
  function byteLoop(buf: Uint8Array, from: number, limit: number): number {
    for (let i = from; i < limit; i++) {
      const c = buf[i]!;
      if (c === 0x0a) {
        if (i === from || buf[i - 1] !== 0x0d) throw new RequestHeadError(400, "bare LF in the request head");
        if (buf[i - 2] === 0x0a && i - 3 >= from && buf[i - 3] === 0x0d) return i + 1;
      } else if (c === 0x0d && i + 1 < buf.length && buf[i + 1] !== 0x0a) {
        throw new RequestHeadError(400, "bare CR in the request head");
      }
    }
    return -1;
  }
  const outcome = (f: () => number): number | string => {
    try {
      return f();
    } catch (e) {
      return (e as Error).message;
    }
  };

  it("ends where the byte loop ends and refuses what it refuses, with the same reason, for any bytes rich in CR and LF", () => {
    const byte = fc.oneof(fc.constant(0x0d), fc.constant(0x0a), fc.constantFrom(0x41, 0x3a, 0x20), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 80 }), fc.nat(), fc.nat(), (xs, a, b) => {
        const buf = Buffer.from(xs);
        const from = buf.length === 0 ? 0 : a % (buf.length + 1);
        const limit = from + (b % (buf.length - from + 2));
        expect(outcome(() => headEnd(buf, from, limit))).toEqual(outcome(() => byteLoop(buf, from, limit)));
      }),
      { numRuns: 5000 },
    );
  });

  it("finds the end of well-formed heads with CRLF-only lines the same way", () => {
    const line = fc.stringMatching(/^[\x20-\x7e]{0,20}$/);
    fc.assert(
      fc.property(fc.array(line, { maxLength: 10 }), fc.nat({ max: 3 }), (lines, blank) => {
        const buf = bytes(`${"\r\n".repeat(blank)}${lines.map((l) => `${l}\r\n`).join("")}\r\nrest`);
        expect(outcome(() => headEnd(buf, 0, buf.length))).toEqual(outcome(() => byteLoop(buf, 0, buf.length)));
      }),
      { numRuns: 1000 },
    );
  });
});


describe("the field lines, checked at once", () => {
  const outcome = (f: () => ParsedRequestHead | null): ParsedRequestHead | null | string => {
    try {
      return f();
    } catch (e) {
      return `${(e as RequestHeadError).status} ${(e as Error).message}`;
    }
  };
  const same = (text: string) => {
    const buf = bytes(text);
    expect(outcome(() => parseRequestHead(buf))).toEqual(outcome(() => parseRequestHeadByChar(buf)));
  };
  // Characters that sit at a rule's edge: separators, whitespace, controls, DEL, obs-text, the colon.
  const edgy = fc.constantFrom(..."\t \x00\x01\x1f\x7f\x80\xff:;,\"()/@[]{}=?\\aZ09-_.!~|`^%");

  it("reads and refuses every head exactly as the character-by-character checks do, with the same reason (property)", () => {
    const line = fc.oneof(
      fc.tuple(token, value).map(([n, v]) => `${n}: ${v}`),
      fc.array(edgy, { maxLength: 14 }).map((cs) => cs.join("")),
      fc.tuple(token, fc.array(edgy, { maxLength: 10 })).map(([n, cs]) => `${n}:${cs.join("")}`),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), fc.constantFrom("GET / HTTP/1.1", "POST /x?y=1 HTTP/1.0", "GET  / HTTP/1.1"), (lines, requestLine) => {
        same(`${[requestLine, ...lines].join("\r\n")}\r\n\r\nafter`);
      }),
      { numRuns: 3000 },
    );
  });

  it("the same for the framing and connection fields, with whitespace and case around their values", () => {
    const ws = fc.constantFrom("", " ", "\t", " \t ");
    const framingField = fc.tuple(fc.constantFrom("Content-Length", "content-length", "Transfer-Encoding", "Connection", "connection", "Upgrade"), ws, fc.constantFrom("5", "0", "chunked", "close", "Upgrade, keep-alive", "x"), ws).map(([n, a, v, b]) => `${n}:${a}${v}${b}`);
    fc.assert(
      fc.property(fc.array(fc.oneof(framingField, fc.tuple(token, value).map(([n, v]) => `${n}: ${v}`)), { maxLength: 6 }), (lines) => {
        same(`${["GET / HTTP/1.1", ...lines].join("\r\n")}\r\n\r\n`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("field names compared without lowercasing", () => {
  it("sameName(name, lower) is name.toLowerCase() === lower for any latin1 name and any lowercase ASCII name (property)", () => {
    const lower = fc.constantFrom("connection", "content-length", "transfer-encoding", "upgrade", "host", "x-edgelb-signature", "te", "a-z");
    const latin1 = fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 20 }).map((cs) => String.fromCharCode(...cs));
    const cased = lower.chain((l) => fc.array(fc.constantFrom(0, 1, 2), { minLength: l.length, maxLength: l.length }).map((how) => [...l].map((c, i) => (how[i] === 1 ? c.toUpperCase() : how[i] === 2 ? String.fromCharCode(c.charCodeAt(0) ^ 0x20) : c)).join("")));
    fc.assert(
      fc.property(fc.oneof(latin1, cased), lower, (name, l) => {
        expect(sameName(name, l)).toBe(name.toLowerCase() === l);
      }),
      { numRuns: 5000 },
    );
  });
});
