import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { rewriteResponseHead, upstreamHeaders } from "./index.ts";

describe("headers towards the NodePort", () => {
  it("drop the signature, hop-by-hop fields and those the Connection header names; keep repeats and Host", () => {
    const out = upstreamHeaders(
      ["Host", "app.example.com", "X-Edgelb-Signature", "v1;…", "Connection", "keep-alive, X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5", "Set-Thing", "a", "Set-Thing", "b", "TE", "trailers"],
      false,
    );
    expect(out).toEqual(["Host", "app.example.com", "Set-Thing", "a", "Set-Thing", "b"]);
  });

  it("re-frame a chunked body (the gate chunks it again) and keep a WebSocket upgrade", () => {
    expect(upstreamHeaders(["Host", "h", "Transfer-Encoding", "chunked"], false)).toEqual(["Host", "h", "Transfer-Encoding", "chunked"]);
    expect(upstreamHeaders(["Host", "h", "Connection", "Upgrade", "Upgrade", "websocket"], true)).toEqual(["Host", "h", "Connection", "Upgrade", "Upgrade", "websocket"]);
    expect(upstreamHeaders(["Host", "h", "Connection", "Upgrade", "Upgrade", "websocket"], false)).toEqual(["Host", "h"]);
  });
});

describe("the response head towards the edge", () => {
  it("an app behind the gate cannot forge the gate's refusal marker (x-edgelb-gate is stripped, the app's 403 stays an app's 403)", () => {
    const head = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Edgelb-Gate: refused\r\nx-edgelb-gate: refused\r\nX-App: 1\r\nContent-Length: 2\r\n\r\n";
    expect(rewriteResponseHead(head, { upgrade: false, close: false })).toBe("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-App: 1\r\nContent-Length: 2\r\n\r\n");
  });

  it("keeps the body's framing as sent, drops the app's connection fields, says close when the gate closes, and keeps an accepted upgrade's", () => {
    const head = "HTTP/1.0 200 OK\nTransfer-Encoding: chunked\nConnection: keep-alive\nKeep-Alive: timeout=5\nUpgrade: h2c\n\n";
    expect(rewriteResponseHead(head, { upgrade: false, close: true })).toBe("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n");
    const ws = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n";
    expect(rewriteResponseHead(ws, { upgrade: true, close: false })).toBe(ws);
  });
});

describe("headers towards the NodePort, property", () => {
  /** The rule as first written: every name lowercased, every Connection token names a field to drop. */
  function reference(rawHeaders: readonly string[], upgrade: boolean): string[] {
    const hop = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);
    const named = new Set<string>();
    let chunked = false;
    let upgradeValue: string | undefined;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const lower = rawHeaders[i]!.toLowerCase();
      if (lower === "connection") for (const t of rawHeaders[i + 1]!.split(",")) named.add(t.trim().toLowerCase());
      else if (lower === "transfer-encoding") chunked = true;
      else if (lower === "upgrade") upgradeValue = rawHeaders[i + 1];
    }
    const out: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const lower = rawHeaders[i]!.toLowerCase();
      if (hop.has(lower) || lower === "x-edgelb-signature" || (named.has(lower) && lower !== "upgrade")) continue;
      out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
    }
    if (chunked) out.push("Transfer-Encoding", "chunked");
    if (upgrade && upgradeValue !== undefined) out.push("Connection", "Upgrade", "Upgrade", upgradeValue);
    return out;
  }

  it("drops exactly what the plain rule drops, whatever the names' case and the Connection tokens", () => {
    // Every name in any mix of cases (the gate compares names without lowercasing them).
    const name = fc
      .constantFrom("Host", "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade", "Transfer-Encoding", "X-Edgelb-Signature", "Proxy-Connection", "Close", "X-Hop", "X-Other", "Accept", "Cookie", "User-Agent", "X-Forwarded-Host")
      .chain((n) => fc.array(fc.boolean(), { minLength: n.length, maxLength: n.length }).map((up) => [...n].map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join("")));
    const value = fc.constantFrom("close", "keep-alive", "Close, X-Hop", "upgrade", " x-other ,", "te, trailer", "chunked", "websocket", "v", "");
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 8 }), fc.boolean(), (fields, upgrade) => {
        const raw = fields.flat();
        expect(upstreamHeaders(raw, upgrade)).toEqual(reference(raw, upgrade));
      }),
      { numRuns: 2000 },
    );
  });
});
