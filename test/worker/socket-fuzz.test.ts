// Fuzzing the socket transport end to end: an origin on loopback (the
// recorder's `answer=script` mode) sends random or mutated response bytes in
// random-sized writes and hangs up. Every exchange must end, within bounded
// time, as a complete response or a typed error the proxy turns into a 502
// (MalformedResponseError; UpstreamResetError when nothing came back).
import fc from "fast-check";
import { connect } from "cloudflare:sockets";
import { describe, expect, inject, it } from "vitest";
import { createSocketTransport } from "../../worker/transport/socket/index.ts";
import { MalformedResponseError, type Origin, UpstreamResetError } from "../../worker/transport/types.ts";
import { recordingId } from "./socket-recorder.ts";

const o = inject("socketOrigins");
const recorder: Origin = { node: "recorder", address: o.recorder.address, port: o.recorder.port, scheme: "http" };
const transport = createSocketTransport({ connect, bodyIdleTimeoutMs: 2000, log: () => {} });

const b64url = (b: Uint8Array) => btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** What one exchange ended as. */
async function exchange(bytes: Uint8Array, split: number): Promise<string> {
  const path = `/rec/${recordingId("fuzz")}?answer=script&split=${split}&b=${b64url(bytes)}`;
  let res: Response;
  try {
    res = await transport.send({ origin: recorder, request: new Request(`http://x${path}`), connectTimeoutMs: 2000, responseTimeoutMs: 2000 });
  } catch (e) {
    if (e instanceof MalformedResponseError) return "malformed";
    if (e instanceof UpstreamResetError && bytes.length === 0) return "reset";
    throw e;
  }
  try {
    await res.arrayBuffer();
    return `response ${res.status}`;
  } catch (e) {
    // A body that breaks after the head: the client's read fails (the head was already sent on).
    expect(String(e)).toMatch(/MalformedResponseError|malformed|truncated|failed/i);
    return "broken body";
  }
}

const seeds = [
  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  "HTTP/1.0 200 OK\r\n\r\nuntil close",
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
];

describe("socket transport fuzzing against a live origin", () => {
  it("random and mutated response bytes, split into random writes, always end cleanly or as a 502-class error", async () => {
    const mutated = fc
      .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }))
      .map(([seed, flips]) => {
        const b = enc(seed);
        for (const [i, v] of flips) b[i % b.length] = v;
        return b;
      });
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, fc.uint8Array({ maxLength: 120 })), fc.integer({ min: 1, max: 16 }), async (bytes, split) => {
        const outcome = await exchange(bytes, split);
        expect(outcome).toMatch(/^(response \d{3}|malformed|reset|broken body)$/);
      }),
      { numRuns: 30 },
    );
  });
});
