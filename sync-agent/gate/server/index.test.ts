import { describe, expect, it } from "vitest";
import { downstreamHeaders, upstreamHeaders } from "./index.ts";

describe("headers towards the NodePort", () => {
  it("drop the signature, hop-by-hop fields and those the Connection header names; keep repeats and Host", () => {
    const out = upstreamHeaders(
      ["Host", "app.example.com", "X-Edgelb-Signature", "v1;…", "Connection", "keep-alive, X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5", "Set-Thing", "a", "Set-Thing", "b", "TE", "trailers"],
      false,
    );
    expect(out).toEqual(["Host", "app.example.com", "Set-Thing", "a", "Set-Thing", "b"]);
  });

  it("re-frame a chunked body (node chunks it again) and keep a WebSocket upgrade", () => {
    expect(upstreamHeaders(["Host", "h", "Transfer-Encoding", "chunked"], false)).toEqual(["Host", "h", "Transfer-Encoding", "chunked"]);
    expect(upstreamHeaders(["Host", "h", "Connection", "Upgrade", "Upgrade", "websocket"], true)).toEqual(["Host", "h", "Connection", "Upgrade", "Upgrade", "websocket"]);
    expect(upstreamHeaders(["Host", "h", "Connection", "Upgrade", "Upgrade", "websocket"], false)).toEqual(["Host", "h"]);
  });
});

describe("headers towards the edge", () => {
  it("an app behind the gate cannot forge the gate's refusal marker (x-edgelb-gate is stripped, the app's 403 stays an app's 403)", () => {
    const out = downstreamHeaders(["Content-Type", "text/plain", "X-Edgelb-Gate", "refused", "x-edgelb-gate", "refused", "X-App", "1"]);
    expect(out).toEqual(["Content-Type", "text/plain", "X-App", "1"]);
  });
});
