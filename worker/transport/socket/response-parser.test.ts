import { describe, expect, it } from "vitest";
import { concat, fromLatin1 } from "./bytes.ts";
import { HttpParseError } from "./http-error.ts";
import { type ResponseHead, ResponseParser } from "./response-parser.ts";

interface Parsed {
  head: ResponseHead | undefined;
  body: string;
  trailers: [string, string][] | undefined;
  ended: boolean;
}

/** Feeds `pieces` in order, then signals EOF when `eof`; collects what a client would see. */
function parse(pieces: Uint8Array[], method = "GET", eof = true, maxHeadBytes?: number): Parsed {
  const p = new ResponseParser({ method, maxHeadBytes });
  const out: Parsed = { head: undefined, body: "", trailers: undefined, ended: false };
  const chunks: Uint8Array[] = [];
  const take = (events: ReturnType<ResponseParser["feed"]>) => {
    for (const e of events) {
      if (e.kind === "head") {
        expect(out.head, "one head per response").toBeUndefined();
        out.head = e.head;
      } else if (e.kind === "data") {
        expect(out.ended, "no data after end").toBe(false);
        chunks.push(e.bytes.slice());
      } else if (e.kind === "error") {
        throw e.error;
      } else {
        out.ended = true;
        out.trailers = e.trailers;
      }
    }
  };
  for (const piece of pieces) take(p.feed(piece));
  if (eof) take(p.finish());
  out.body = new TextDecoder().decode(concat(chunks));
  return out;
}

/** Every way of cutting `bytes` in two, plus one byte at a time. */
function splits(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [[bytes]];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  out.push([...bytes].map((b) => Uint8Array.of(b)));
  return out;
}

interface Case {
  name: string;
  raw: string;
  method?: string;
  status: number;
  body: string;
  headers?: Record<string, string>;
  trailers?: [string, string][];
  framing: string;
}

const VALID: Case[] = [
  {
    name: "content-length",
    raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    status: 200,
    body: "hello",
    headers: { "content-type": "text/plain", "content-length": "5" },
    framing: "length",
  },
  {
    name: "chunked with extensions and trailers",
    raw:
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "5;ext=1\r\nhello\r\n1 \r\n \r\nA\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nX-Two: 2\r\n\r\n",
    status: 200,
    body: "hello 0123456789",
    trailers: [
      ["x-checksum", "abc"],
      ["x-two", "2"],
    ],
    framing: "chunked",
  },
  {
    name: "close-delimited (HTTP/1.0, no length)",
    raw: "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the end\r\nof the connection",
    status: 200,
    body: "until the end\r\nof the connection",
    framing: "close",
  },
  {
    name: "HEAD keeps Content-Length but has no body",
    raw: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
    method: "HEAD",
    status: 200,
    body: "",
    headers: { "content-length": "1234" },
    framing: "none",
  },
  {
    name: "interim 100 and 103 are skipped",
    raw:
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    status: 201,
    body: "ok",
    framing: "length",
  },
  { name: "204 has no body", raw: "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", status: 204, body: "", framing: "none" },
  {
    name: "304 ignores Content-Length",
    raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: \"x\"\r\n\r\n",
    status: 304,
    body: "",
    framing: "none",
  },
  {
    name: "empty reason phrase, bare LF line ends, OWS around values",
    raw: "HTTP/1.1 404\nContent-Length:   3  \n\nnop",
    status: 404,
    body: "nop",
    headers: { "content-length": "3" },
    framing: "length",
  },
  {
    name: "repeated identical Content-Length",
    raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nhi",
    status: 200,
    body: "hi",
    framing: "length",
  },
  {
    name: "Content-Length: 0",
    raw: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    status: 200,
    body: "",
    framing: "length",
  },
  {
    name: "gzip then chunked",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
    status: 200,
    body: "ab",
    framing: "chunked",
  },
  {
    name: "101 switches protocols: later bytes pass through",
    raw: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi",
    status: 101,
    body: "\x81\x02hi",
    framing: "upgrade",
  },
];

describe("ResponseParser: valid responses split at every byte boundary", () => {
  for (const c of VALID) {
    it(c.name, () => {
      const bytes = fromLatin1(c.raw);
      for (const pieces of splits(bytes)) {
        const r = parse(pieces, c.method);
        expect(r.head?.status).toBe(c.status);
        expect(r.head?.framing.kind).toBe(c.framing);
        expect(r.body).toBe(new TextDecoder().decode(fromLatin1(c.body)));
        expect(r.ended).toBe(true);
        for (const [k, v] of Object.entries(c.headers ?? {})) {
          expect(r.head?.headers).toContainEqual([k, v]);
        }
        if (c.trailers) expect(r.trailers).toEqual(c.trailers);
      }
    });
  }

  it("ends a length- or chunk-framed body without waiting for the connection to close", () => {
    for (const raw of [VALID[0]!.raw, VALID[1]!.raw]) {
      const r = parse([fromLatin1(raw)], "GET", false);
      expect(r.ended).toBe(true);
    }
  });

  it("keeps repeated Set-Cookie fields apart", () => {
    const r = parse([
      fromLatin1("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n"),
    ]);
    expect(r.head?.headers.filter(([n]) => n === "set-cookie")).toEqual([
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
    ]);
  });

  it("streams a large body in the slices it arrived in, without copying it into one buffer", () => {
    const p = new ResponseParser({ method: "GET" });
    const events = p.feed(fromLatin1("HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n"));
    expect(events.map((e) => e.kind)).toEqual(["head"]);
    const block = new Uint8Array(1_000_000);
    for (let i = 0; i < 3; i++) {
      const ev = p.feed(block);
      expect(ev[0]).toMatchObject({ kind: "data" });
      expect((ev[0] as { bytes: Uint8Array }).bytes.buffer).toBe(block.buffer);
    }
    expect(p.done).toBe(true);
  });
});

const MALFORMED: { name: string; raw: string; error: RegExp; method?: string }[] = [
  { name: "not HTTP at all", raw: "SSH-2.0-OpenSSH_9.6\r\n\r\n", error: /bad status line/ },
  { name: "HTTP/2 preface", raw: "HTTP/2 200\r\n\r\n", error: /bad status line/ },
  { name: "status code not 3 digits", raw: "HTTP/1.1 20 OK\r\n\r\n", error: /bad status line/ },
  { name: "status code out of range", raw: "HTTP/1.1 600 Nope\r\nContent-Length: 0\r\n\r\n", error: /out of range/ },
  { name: "lowercase protocol", raw: "http/1.1 200 OK\r\n\r\n", error: /bad status line/ },
  { name: "header without colon", raw: "HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\nhello", error: /bad header line/ },
  { name: "space before colon", raw: "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello", error: /bad header line/ },
  { name: "obsolete line folding", raw: "HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\n\r\n", error: /line folding/ },
  { name: "control char in value", raw: "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\n\r\n", error: /bad value/ },
  { name: "bare CR inside a line", raw: "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", error: /bare CR/ },
  {
    name: "conflicting Content-Length",
    raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    error: /conflicting Content-Length/,
  },
  { name: "negative Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", error: /invalid Content-Length/ },
  { name: "hex Content-Length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", error: /invalid Content-Length/ },
  {
    name: "Content-Length beyond 2^53",
    raw: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
    error: /too large/,
  },
  {
    name: "Transfer-Encoding and Content-Length together",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    error: /both Transfer-Encoding and Content-Length/,
  },
  {
    name: "chunked not last",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    error: /not the final transfer coding/,
  },
  {
    name: "chunk size not hex",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    error: /invalid chunk size/,
  },
  {
    name: "negative chunk size",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    error: /invalid chunk size/,
  },
  {
    name: "empty chunk size line",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
    error: /invalid chunk size/,
  },
  {
    name: "chunk size overflowing",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
    error: /invalid chunk size/,
  },
  {
    name: "chunk longer than declared",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    error: /longer than its declared size/,
  },
  {
    name: "bad trailer line",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnot a trailer\r\n\r\n",
    error: /invalid trailer line/,
  },
  {
    name: "truncated Content-Length body",
    raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
    error: /truncated body: 5 of 10 bytes missing/,
  },
  {
    name: "truncated chunk",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello",
    error: /truncated chunked body: connection closed inside a chunk, 5 bytes missing/,
  },
  {
    name: "chunked body without terminating chunk",
    raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    error: /truncated chunked body: connection closed before the terminating zero-size chunk/,
  },
  { name: "truncated head", raw: "HTTP/1.1 200 OK\r\nContent-Le", error: /inside the response head/ },
  { name: "nothing at all", raw: "", error: /closed before a response/ },
];

describe("ResponseParser: malformed responses are refused, however they arrive", () => {
  for (const c of MALFORMED) {
    it(c.name, () => {
      const bytes = fromLatin1(c.raw);
      for (const pieces of splits(bytes)) {
        let thrown: unknown;
        try {
          parse(pieces, c.method);
        } catch (e) {
          thrown = e;
        }
        expect(thrown).toBeInstanceOf(HttpParseError);
        expect((thrown as Error).message).toMatch(c.error);
      }
    });
  }

  it("refuses a head larger than the limit before buffering more of it", () => {
    const p = new ResponseParser({ method: "GET", maxHeadBytes: 64 * 1024 });
    p.feed(fromLatin1("HTTP/1.1 200 OK\r\n"));
    const line = fromLatin1(`X-Filler: ${"a".repeat(1000)}\r\n`);
    let thrown: unknown;
    let fed = 0;
    try {
      for (; fed < 1000; fed++) p.feed(line);
    } catch (e) {
      thrown = e;
    }
    expect((thrown as Error).message).toMatch(/response head larger than 65536 bytes/);
    expect(fed).toBeLessThan(70);
  });

  it("refuses a complete head over the limit even when it arrives in one piece", () => {
    const raw = fromLatin1(`HTTP/1.1 200 OK\r\nX-Big: ${"b".repeat(70_000)}\r\nContent-Length: 0\r\n\r\n`);
    expect(() => parse([raw])).toThrow(/response head larger than/);
  });

  it("refuses an endless chunk size line", () => {
    const p = new ResponseParser({ method: "GET" });
    p.feed(fromLatin1("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
    const events = p.feed(fromLatin1("0".repeat(5000)));
    expect(events).toEqual([{ kind: "error", error: expect.objectContaining({ message: "chunk size line too long" }) }]);
    expect(p.done).toBe(true);
  });

  it("reports a broken body after the head and data parsed from the same bytes", () => {
    const p = new ResponseParser({ method: "GET" });
    const events = p.feed(fromLatin1("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n"));
    expect(events.map((e) => e.kind)).toEqual(["head", "data", "error"]);
    expect(p.feed(fromLatin1("more"))).toEqual([]);
  });

  it("rejects a non-HTTP first line at once, without waiting for the end of a head", () => {
    const p = new ResponseParser({ method: "GET" });
    expect(() => p.feed(fromLatin1("SSH-2.0-OpenSSH_9.6\r\n"))).toThrow(/bad status line "SSH-2.0-OpenSSH_9.6"/);
    const q = new ResponseParser({ method: "GET" });
    expect(() => q.feed(fromLatin1("x".repeat(2000)))).toThrow(/status line longer than 1024 bytes/);
  });
});
