import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChunkedDecoder } from "../../../worker/transport/socket/chunked.ts";
import { findHeadEnd, ResponseParser } from "../../../worker/transport/socket/response-parser.ts";
import { rewriteResponseHead } from "../server/index.ts";
import { plainResponse } from "./index.ts";

const MAX = 64 * 1024;
const plain = (text: string, close = false) => {
  const buf = Buffer.from(text, "latin1");
  return plainResponse(buf, findHeadEnd(buf, 0), close, MAX);
};

/** What the full path makes of the same bytes: the strict parser's framing, the rewritten head, the reuse rule. */
function fullPath(text: string, close: boolean): { length: number; done: boolean; out: string; dirty: boolean } | "refused" | "other" {
  const buf = Buffer.from(text, "latin1");
  const end = findHeadEnd(buf, 0);
  let head;
  try {
    for (const e of new ResponseParser({ method: "GET", maxHeadBytes: MAX }).feed(buf.subarray(0, end))) if (e.kind === "head") head = e.head;
  } catch {
    return "refused";
  }
  if (head === undefined || (head.framing.kind !== "length" && head.framing.kind !== "chunked")) return "other";
  let dirty = head.version === "1.0" || head.headers.some(([n, v]) => n === "connection" && /(^|,)\s*close\s*(,|$)/i.test(v));
  let length = -1;
  let used: number;
  let done: boolean;
  if (head.framing.kind === "length") {
    length = head.framing.length;
    used = Math.min(length, buf.length - end);
    done = used === length;
    if (buf.length - end > length) dirty = true;
  } else {
    // As the server's responseBody follows a chunked body: the decoder finds its end, the bytes go on as sent.
    const r = new ChunkedDecoder().feed(buf.subarray(end));
    if (r.error) return "refused";
    used = buf.length - end - r.rest.length;
    done = r.done;
    if (r.done && r.rest.length > 0) dirty = true;
  }
  const body = buf.subarray(end, end + used).toString("latin1");
  return { length, done, out: rewriteResponseHead(buf.subarray(0, end).toString("latin1"), { upgrade: false, close }) + body, dirty };
}

describe("a NodePort's plain answer, relayed in one pass", () => {
  it("drops the connection fields and the gate's own markers, keeps the rest byte for byte, and puts the body behind the head", () => {
    const r = plain("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Edgelb-Gate: refused\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length:  5 \r\n\r\nhello")!;
    expect(r.out.toString("latin1")).toBe("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length:  5 \r\n\r\nhello");
    expect(r).toMatchObject({ length: 5, bodyBytes: 5, dirty: false });
  });

  it("says close when the edge's connection closes after it, and marks the NodePort's connection unusable after HTTP/1.0, Connection: close or extra bytes", () => {
    expect(plain("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", true)!.out.toString("latin1")).toBe("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nconnection: close\r\n\r\n");
    expect(plain("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")!.dirty).toBe(true);
    expect(plain("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 2\r\n\r\nok")!.dirty).toBe(true);
    expect(plain("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1")!).toMatchObject({ dirty: true, bodyBytes: 2 });
    expect(plain("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")!).toMatchObject({ dirty: false, bodyBytes: 3, length: 10 });
  });

  it("relays a chunked answer (Node's http server after writeHead) in one pass: whole, begun, or followed by more bytes", () => {
    const whole = plain("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", true)!;
    expect(whole.out.toString("latin1")).toBe("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    expect(whole).toMatchObject({ length: -1, dirty: false });
    expect(whole.chunked).toBeUndefined();
    const begun = plain("HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\n\r\n5\r\nhel")!;
    expect(begun.out.toString("latin1")).toBe("HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\n\r\n5\r\nhel");
    // The rest of the body is followed by the decoder handed back.
    const rest = begun.chunked!.feed(Buffer.from("lo\r\n0\r\n\r\n"));
    expect(rest.done).toBe(true);
    expect(plain("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1")!).toMatchObject({ dirty: true, bodyBytes: 5 });
  });

  it("leaves everything unusual to the full parser", () => {
    for (const text of [
      "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", // bare LF
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
      "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", // a bad chunk size: the full path refuses it
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\n\r\n", // close-delimited
      "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
      "HTTP/1.1 100 Continue\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\n folded: x\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ]) expect(plain(text), JSON.stringify(text)).toBeNull();
    const big = Buffer.from(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(100)}\r\nContent-Length: 0\r\n\r\n`, "latin1");
    expect(plainResponse(big, findHeadEnd(big, 0), false, 64)).toBeNull();
  });

  it("property: whenever it answers, the strict parser accepts the same head with the same length, and the edge gets the same bytes as by the full path", () => {
    const name = fc.constantFrom("Content-Length", "content-length", "CONTENT-LENGTH", "Connection", "Keep-Alive", "Proxy-Connection", "Upgrade", "X-Edgelb-Gate", "x-edgelb-gate-cause", "Transfer-Encoding", "Content-Type", "Set-Cookie", "X-A", "X-A", "Content-Type", "Bad Name", "");
    const value = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom("0", "5", "12", " 3 ", "close", "keep-alive", "Keep-Alive, close", "chunked", "a\tb", "+1", "1,1", "é", "x y ") },
      { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 6 }) },
    );
    const eol = fc.constantFrom("\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\n", "\r");
    const status = fc.constantFrom("HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 201 Created", "HTTP/1.0 200 OK", "HTTP/1.1 404", "HTTP/1.1 503 Service Unavailable", "HTTP/1.1 204 No Content", "HTTP/1.1 100 Continue", "HTTP/1.1 200 \u00e9t\u00e9", "HTTP/1.1 2000 OK", "HTTP/1.1 200 O\x01K");
    // A chunked body (whole, cut short, followed by more bytes, or with a bad size line), or any bytes.
    const chunk = fc.string({ maxLength: 8 }).map((d) => `${d.length.toString(16)}\r\n${d}\r\n`);
    const body = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.tuple(fc.array(chunk, { maxLength: 3 }), fc.constantFrom("0\r\n\r\n", "0\r\nX-T: 1\r\n\r\n", "0\r\n\r\nextra", "0\r\n", "", "zz\r\n"), fc.nat({ max: 4 })).map(([cs, end, cut]) => {
        const all = cs.join("") + end;
        return all.slice(0, all.length - (cut === 4 ? 3 : 0));
      }),
    );
    let answered = 0;
    let chunkedAnswered = 0;
    fc.assert(
      fc.property(status, fc.array(fc.tuple(name, value, eol), { maxLength: 5 }), fc.option(fc.nat({ max: 30 })), fc.boolean(), body, fc.boolean(), (st, fields, length, te, body, close) => {
        const framing = [...(length === null ? [] : [["Content-Length", ` ${length}`, "\r\n"] as const]), ...(te ? [["Transfer-Encoding", " chunked", "\r\n"] as const] : [])];
        const all = [...fields, ...framing];
        const text = `${st}\r\n${all.map(([n, v, e]) => `${n}:${v}${e}`).join("")}\r\n${body}`;
        const buf = Buffer.from(text, "latin1");
        if (findHeadEnd(buf, 0) === -1) return;
        const r = plain(text, close);
        if (r === null) return;
        answered++;
        const full = fullPath(text, close);
        expect(full).not.toBe("refused");
        expect(full).not.toBe("other");
        const f = full as { length: number; done: boolean; out: string; dirty: boolean };
        expect(r.length).toBe(f.length);
        expect(r.dirty).toBe(f.dirty);
        expect(r.out.toString("latin1")).toBe(f.out);
        if (r.length === -1) {
          chunkedAnswered++;
          expect(r.chunked === undefined).toBe(f.done);
        }
      }),
      { numRuns: 3000 },
    );
    // Not vacuous: plenty of the generated heads took the fast path.
    expect(answered).toBeGreaterThan(100);
    expect(chunkedAnswered).toBeGreaterThan(20);
  });
});
