import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidRequestHeadError } from "../types.ts";
import { latin1 } from "./bytes.ts";
import { hostPort, requestFraming, serializeRequestHead, type RequestHeadInput } from "./request-head.ts";
import type { Connect } from "./connection.ts";
import { createSocketTransport } from "./transport.ts";

/** A Headers stand-in that holds what a real Headers refuses, to test the writer's own checks. */
function rawHeaders(entries: [string, string][]): Headers {
  return {
    get: (n: string) => entries.find(([k]) => k === n.toLowerCase())?.[1] ?? null,
    [Symbol.iterator]: () => entries[Symbol.iterator](),
  } as unknown as Headers;
}

describe("requestFraming", () => {
  it("uses a valid Content-Length, chunked otherwise, and says 0 for body-less POST", () => {
    const h = (cl?: string) => new Headers(cl === undefined ? {} : { "content-length": cl });
    expect(requestFraming("POST", h("42"), true)).toEqual({ kind: "length", length: 42 });
    expect(requestFraming("POST", h("4x"), true)).toEqual({ kind: "chunked" });
    expect(requestFraming("PUT", h(), true)).toEqual({ kind: "chunked" });
    expect(requestFraming("POST", h(), false)).toEqual({ kind: "length", length: 0 });
    expect(requestFraming("GET", h(), false)).toEqual({ kind: "none" });
  });
});

describe("serializeRequestHead", () => {
  it("writes Host first, drops hop-by-hop and Connection-listed fields, ends with its own framing", () => {
    const headers = new Headers({
      host: "app.example.com",
      connection: "Upgrade, X-Secret-Hop",
      upgrade: "h2c",
      "x-secret-hop": "1",
      "transfer-encoding": "chunked",
      "content-length": "99",
      "keep-alive": "timeout=1",
      accept: "*/*",
    });
    const head = serializeRequestHead({
      method: "PATCH",
      target: "/a/b?c=d",
      headers,
      defaultHost: "10.0.0.1:30080",
      framing: { kind: "length", length: 3 },
      connection: "close",
    });
    expect(latin1(head)).toBe(
      "PATCH /a/b?c=d HTTP/1.1\r\nhost: app.example.com\r\naccept: */*\r\ncontent-length: 3\r\nconnection: close\r\n\r\n",
    );
  });

  it("falls back to the origin address for Host, bracketing IPv6", () => {
    expect(hostPort("2001:db8::1", 30080)).toBe("[2001:db8::1]:30080");
    const head = serializeRequestHead({
      method: "GET",
      target: "/",
      headers: new Headers(),
      defaultHost: hostPort("192.0.2.7", 31000),
      framing: { kind: "none" },
      connection: "close",
    });
    expect(latin1(head)).toBe("GET / HTTP/1.1\r\nhost: 192.0.2.7:31000\r\nconnection: close\r\n\r\n");
  });

  it("refuses a request target that would break the request line", () => {
    const base = { method: "GET", headers: new Headers(), defaultHost: "h", framing: { kind: "none" }, connection: "close" } as const;
    expect(() => serializeRequestHead({ ...base, target: "/a b" })).toThrow(/invalid request target/);
    expect(() => serializeRequestHead({ ...base, target: "http://x/" })).toThrow(/invalid request target/);
    expect(() => serializeRequestHead({ ...base, method: "GET /x", target: "/" })).toThrow(/invalid method/);
    expect(() => serializeRequestHead({ ...base, target: "/a\r\nX: y" })).toThrow(InvalidRequestHeadError);
    expect(() => serializeRequestHead({ ...base, target: "/a\0" })).toThrow(InvalidRequestHeadError);
  });

  const base: Omit<RequestHeadInput, "headers"> = { method: "GET", target: "/", defaultHost: "h:1", framing: { kind: "none" }, connection: "close" };

  it("writes non-ASCII text as UTF-8, so U+010D U+010A cannot become CR LF", () => {
    const head = serializeRequestHead({ ...base, headers: rawHeaders([["x-v", "é\u010D\u010A😀"]]) });
    expect(latin1(head)).toContain("x-v: \xc3\xa9\xc4\x8d\xc4\x8a\xf0\x9f\x98\x80\r\n");
    expect(latin1(head).split("\r\n")).toHaveLength(6); // request line, host, x-v, connection, "", ""
  });

  const refused: [string, [string, string][], RegExp][] = [
    ["a name with a space", [["x bad", "1"]], /invalid header name "x bad"/],
    ["a name with a colon", [["x:y", "1"]], /invalid header name/],
    ["a non-ASCII name", [["x-é", "1"]], /invalid header name/],
    ["an empty name", [["", "1"]], /invalid header name/],
    ["CR LF in a value", [["x-a", "1\r\nx-b: 2"]], /CR, LF or NUL in the value of header "x-a"/],
    ["a bare LF in a value", [["x-a", "1\nx"]], /CR, LF or NUL/],
    ["NUL in a value", [["x-a", "1\0"]], /CR, LF or NUL/],
    ["CR LF in Host", [["host", "a\r\nx: 1"]], /value of header "host"/],
  ];
  for (const [what, entries, msg] of refused) {
    it(`refuses ${what} with InvalidRequestHeadError`, () => {
      const err = (() => {
        try {
          serializeRequestHead({ ...base, headers: rawHeaders(entries) });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(InvalidRequestHeadError);
      expect((err as Error).message).toMatch(msg);
    });
  }

  it("refuses the same in extra fields (the WebSocket handshake's)", () => {
    expect(() => serializeRequestHead({ ...base, headers: new Headers(), extra: [["sec-websocket-key", "k\r\n"]] })).toThrow(
      InvalidRequestHeadError,
    );
  });

  it("property: any field either is refused or comes back as exactly one field line with its UTF-8 value", () => {
    const anyText = fc.string({ unit: "binary", maxLength: 20 });
    const tokenish = fc.oneof(fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,12}$/), anyText);
    fc.assert(
      fc.property(fc.array(fc.tuple(tokenish, anyText), { maxLength: 5 }), (fields) => {
        const entries = fields.map(([n, v]) => [`x-${n}`, v] as [string, string]);
        let head: Uint8Array;
        try {
          head = serializeRequestHead({ ...base, headers: rawHeaders(entries) });
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidRequestHeadError);
          const bad = entries.some(([n, v]) => !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(n) || /[\r\n\0]/.test(v));
          expect(bad).toBe(true);
          return;
        }
        // Parse what was written: CRLF-separated lines, a single empty line at the end.
        const text = new TextDecoder().decode(head);
        const lines = text.split("\r\n");
        expect(lines.slice(-2)).toEqual(["", ""]);
        expect(lines.slice(0, -2).every((l) => l !== "" && !l.includes("\r") && !l.includes("\n") && !l.includes("\0"))).toBe(true);
        const written = lines.slice(2, 2 + entries.length);
        expect(written).toEqual(entries.map(([n, v]) => `${n}: ${new TextDecoder().decode(new TextEncoder().encode(v))}`));
      }),
      { numRuns: 500 },
    );
  });
});

describe("serializeRequestHead from a plain record (OutgoingRequest.fields)", () => {
  const base = { method: "GET", target: "/", defaultHost: "h:1", framing: { kind: "none" }, connection: "close" } as const;
  /** The field lines after the request line, in order. */
  const lines = (head: Uint8Array) => new TextDecoder().decode(head).split("\r\n").slice(1, -2);

  it("writes the same fields as the Headers path: Host first, hop-by-hop and Connection-listed ones dropped, names in lowercase", () => {
    const fields = { "X-Secret-Hop": "1", Connection: "Upgrade, x-secret-hop", accept: "*/*", HOST: "app.example.com", "transfer-encoding": "chunked", "content-length": "9" };
    const head = serializeRequestHead({ ...base, fields, framing: { kind: "length", length: 3 } });
    expect(lines(head)).toEqual(["host: app.example.com", "accept: */*", "content-length: 3", "connection: close"]);
  });

  it("refuses what would break out of a line, as the Headers path does", () => {
    const bad: Record<string, string>[] = [{ "x bad": "1" }, { "x-a": "1\r\nx-b: 2" }, { host: "a\nx: 1" }, { "x-a": "\0" }];
    for (const fields of bad) {
      expect(() => serializeRequestHead({ ...base, fields })).toThrow(InvalidRequestHeadError);
    }
  });

  it("property: a record gives the same field lines as a Headers object holding it (order aside)", () => {
    const name = fc.oneof(
      fc.constantFrom("host", "Host", "connection", "Connection", "content-length", "Transfer-Encoding", "te", "upgrade", "keep-alive", "x-a", "X-B", "accept"),
      fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}$/),
    );
    // Values a Headers object keeps as given: no CR/LF/NUL, no edge whitespace (ASCII: the
    // runtime warns on every other value; UTF-8 is the Headers path's own property above).
    const value = fc.oneof(
      fc.constantFrom("x-a", "x-b, accept", "close", "keep-alive, X-A"),
      fc.string({ unit: "grapheme-ascii", maxLength: 12 }).filter((v) => !/[\r\n\0]/.test(v) && v.trim() === v),
    );
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, value), { maxLength: 8, selector: ([n]) => n.toLowerCase() }), (entries) => {
        const fields = Object.fromEntries(entries);
        const fromRecord = serializeRequestHead({ ...base, fields });
        const fromHeaders = serializeRequestHead({ ...base, headers: new Headers(entries) });
        const a = lines(fromRecord);
        const b = lines(fromHeaders);
        expect(a[0]).toBe(b[0]); // Host first
        expect([...a].sort()).toEqual([...b].sort());
      }),
      { numRuns: 500 },
    );
  });

  it("keeps a field named __proto__ as a field (an own property of the record)", () => {
    const fields: Record<string, string> = {};
    Object.defineProperty(fields, "__proto__", { value: "1", enumerable: true, writable: true, configurable: true });
    expect(lines(serializeRequestHead({ ...base, fields }))).toEqual(["host: h:1", "__proto__: 1", "connection: close"]);
  });
});

describe("the socket transport given the fields as a plain record", () => {
  it("writes the record's fields and never reads (so never builds) the request's Headers", async () => {
    let written = "";
    let answer!: ReadableStreamDefaultController<Uint8Array>;
    const connect: Connect = () =>
      ({
        opened: Promise.resolve(),
        closed: new Promise(() => {}),
        close: async () => {},
        readable: new ReadableStream<Uint8Array>({ start: (c) => void (answer = c) }),
        writable: new WritableStream<Uint8Array>({
          write: (chunk) => {
            written += new TextDecoder().decode(chunk);
            answer.enqueue(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
          },
        }),
      }) as unknown as Socket;
    const transport = createSocketTransport({ connect, log: () => {} });
    const fields = { host: "app.example.com", accept: "*/*", "x-request-id": "r1" };
    const res = await transport.send({
      origin: { node: "n1", address: "192.0.2.1", port: 30080, scheme: "http" },
      request: {
        method: "GET",
        url: "https://app.example.com/p?q=1",
        fields,
        get headers(): Headers {
          throw new Error("the transport built a Headers object");
        },
        body: null,
      },
      connectTimeoutMs: 1_000,
      responseTimeoutMs: 1_000,
    });
    expect(await res.text()).toBe("ok");
    expect(written).toBe("GET /p?q=1 HTTP/1.1\r\nhost: app.example.com\r\naccept: */*\r\nx-request-id: r1\r\nconnection: close\r\n\r\n");
  });
});
