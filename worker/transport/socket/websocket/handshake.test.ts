import { describe, expect, it } from "vitest";
import type { ResponseHead } from "../response-parser.ts";
import { acceptFor, handshakeProblem, newKey } from "./handshake.ts";

const head = (headers: [string, string][]): ResponseHead => ({
  version: "1.1",
  status: 101,
  statusText: "Switching Protocols",
  headers,
  framing: { kind: "upgrade" },
});

describe("WebSocket handshake", () => {
  it("computes Sec-WebSocket-Accept as in RFC 6455 §1.3", async () => {
    expect(await acceptFor("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  it("makes a fresh 16-byte key each time", () => {
    const a = newKey();
    expect(atob(a)).toHaveLength(16);
    expect(newKey()).not.toBe(a);
  });

  it("accepts a proper 101 and names what is wrong with a bad one", () => {
    const ok: [string, string][] = [
      ["upgrade", "WebSocket"],
      ["connection", "keep-alive, Upgrade"],
      ["sec-websocket-accept", "A="],
    ];
    expect(handshakeProblem(head(ok), "A=", [])).toBeNull();
    expect(handshakeProblem(head([...ok, ["sec-websocket-protocol", "chat"]]), "A=", ["chat", "v2"])).toBeNull();
    expect(handshakeProblem(head(ok.slice(1)), "A=", [])).toMatch(/Upgrade: websocket/);
    expect(handshakeProblem(head([ok[0]!, ok[2]!]), "A=", [])).toMatch(/Connection: Upgrade/);
    expect(handshakeProblem(head(ok), "B=", [])).toMatch(/does not match the key/);
    expect(handshakeProblem(head([...ok, ["sec-websocket-extensions", "permessage-deflate"]]), "A=", [])).toMatch(
      /not offered/,
    );
    expect(handshakeProblem(head([...ok, ["sec-websocket-protocol", "x"]]), "A=", ["chat"])).toMatch(
      /subprotocol "x" was not offered/,
    );
  });
});
