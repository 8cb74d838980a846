// A trickling upload (`curl -T -`: chunked, no Content-Length) reaches the
// origin piece by piece as the client sends it. Each piece is produced only
// after the origin has received the one before, so a transport that gathered
// the body first would never finish; and the pieces come slowly (a slow
// link), the whole upload outlasting responseTimeoutMs, which must not cut it.
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { createFetchTransport } from "../../worker/transport/fetch/index.ts";
import { socketTransport } from "../../worker/transport/socket/index.ts";
import type { Origin, Transport } from "../../worker/transport/types.ts";
import { recorded, recordingId } from "./socket-recorder.ts";
import { until } from "./websocket-client.ts";

const o = inject("socketOrigins");
const recorder: Origin = { node: "recorder", address: o.recorder.address, port: o.recorder.port, scheme: "http" };
const transports: [string, Transport][] = [
  ["socket", socketTransport],
  ["fetch", createFetchTransport()],
];

describe.each(transports)("a trickling chunked upload over the %s transport", (_name, transport) => {
  it("reaches the origin as each piece arrives, not after the body ends", async () => {
    const id = recordingId("trickle");
    const pieces = 5;
    // The upload takes at least (pieces - 1) × gapMs, longer than responseTimeoutMs; the origin's
    // answer after it has the whole responseTimeoutMs (200 ms was lost once at load ~20).
    const gapMs = 200;
    const responseTimeoutMs = 600;
    expect((pieces - 1) * gapMs).toBeGreaterThan(responseTimeoutMs);
    let k = 0;
    const text = async () => String.fromCharCode(...(await recorded(id)));
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (k > 0) {
          // The origin must already hold the previous piece before the client sends the next.
          await until(text, (t) => t.includes(`piece-${k - 1};`), `piece ${k - 1} at the origin`, 5_000);
          await new Promise((r) => setTimeout(r, gapMs)); // the slow link
        }
        if (k === pieces) return c.close();
        c.enqueue(new TextEncoder().encode(`piece-${k++};`));
      },
    });
    const res = await transport.send({
      origin: recorder,
      request: new Request(`http://x/rec/${id}?answer=body`, { method: "PUT", body }),
      connectTimeoutMs: 2000,
      responseTimeoutMs,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ bodyBytes: "piece-0;".length * pieces });
  });
});
