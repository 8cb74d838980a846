// Request smuggling through the socket transport: what a hostile client can
// put in header values must reach a raw TCP origin as one request, its
// non-ASCII text as UTF-8 (what workerd's own fetch() sends), never as the
// low bytes of each UTF-16 unit (U+010D U+010A → CR LF). The recording origin
// keeps every byte of the connection, so a second request cannot hide.
import fc from "fast-check";
import { describe, expect, inject, it } from "vitest";
import { connect } from "cloudflare:sockets";
import { createSocketTransport } from "../../worker/transport/socket/index.ts";
import { InvalidRequestHeadError, type Origin, type Transport } from "../../worker/transport/types.ts";
import { edgeWithService } from "./helpers.ts";
import { parseRequests, recorded, recordingId } from "./socket-recorder.ts";
import { openThroughSocket } from "./websocket-client.ts";

const o = inject("socketOrigins");
const recorder: Origin = { node: "recorder", address: o.recorder.address, port: o.recorder.port, scheme: "http" };
const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

// The sockets the transport opened: the test closes them once the answer is read, as the end of a
// client's request would (a whole answer's socket is left to the runtime, and this test's context
// outlives a request), so the recorder then holds every byte the connection carried.
const opened: Socket[] = [];
const transport = createSocketTransport({
  connect: (address, options) => {
    const socket = connect(address, options);
    opened.push(socket);
    return socket;
  },
});

async function sendRecorded(headers: Headers | Record<string, string>, init: RequestInit = {}) {
  const id = recordingId("smuggle");
  const res = await transport.send({
    origin: recorder,
    request: new Request(`http://ignored.invalid/rec/${id}`, { ...init, headers }),
    connectTimeoutMs: 2000,
    responseTimeoutMs: 5000,
  });
  await res.arrayBuffer();
  await Promise.all(opened.splice(0).map((socket) => socket.close().catch(() => {})));
  return parseRequests(await recorded(id, { closed: true }));
}

const value = (req: { headers: [string, Uint8Array][] }, name: string) => req.headers.find(([n]) => n === name)?.[1];

describe("socket transport: request heads cannot be split by header text", () => {
  it("writes U+010D U+010A as UTF-8 (C4 8D C4 8A): no CR LF, no injected field, no second request", async () => {
    const forged = "a\u010D\u010AX-Forwarded-For: 6.6.6.6\u010D\u010A\u010D\u010AGET /admin HTTP/1.1\u010D\u010AHost: internal";
    const { requests, garbage } = await sendRecorded({ host: "shop.example.com", "x-note": forged });
    expect(garbage).toBeNull();
    expect(requests).toHaveLength(1);
    expect(requests[0]!.headers.map(([n]) => n)).not.toContain("x-forwarded-for");
    expect(hex(value(requests[0]!, "x-note")!)).toBe(hex(utf8(forged)));
  });

  it("delivers legitimate non-ASCII values (é, emoji, CJK) byte-exact as UTF-8", async () => {
    const v = "café 😀 東京 naïve";
    const { requests } = await sendRecorded({ "x-name": v, "content-disposition": "attachment; filename=\"résumé.pdf\"" });
    expect(requests).toHaveLength(1);
    expect(hex(value(requests[0]!, "x-name")!)).toBe(hex(utf8(v)));
    expect(hex(value(requests[0]!, "content-disposition")!)).toBe(hex(utf8("attachment; filename=\"résumé.pdf\"")));
  });

  it("writes the WebSocket handshake with the same serializer: UTF-8, one request", async () => {
    const id = recordingId("smuggle-ws");
    const forged = "x\u010D\u010AGET /smuggled HTTP/1.1\u010D\u010A\u010D\u010A";
    // The recorder answers 200 (no upgrade): the handshake is refused, which is fine here.
    const res = await openThroughSocket(recorder, `/rec/${id}`, { "x-note": forged });
    expect(res.status).toBe(200);
    const { requests, garbage } = parseRequests(await recorded(id, { closed: true }));
    expect(garbage).toBeNull();
    expect(requests).toHaveLength(1);
    expect(hex(value(requests[0]!, "x-note")!)).toBe(hex(utf8(forged)));
  });

  it("property: random header text never yields more than one request, and arrives as its UTF-8", async () => {
    // Code points chosen to hit the dangerous low bytes once truncated to 8
    // bits (0x0A, 0x0D, 0x00, ':' and space), plus anything else.
    const tricky = fc.constantFrom("\u010A", "\u010D", "\u0100", "\u013A", "\u0120", "\u0A0D", "\uFF0A", ":", " ", "\t", "é", "😀");
    const text = fc.array(fc.oneof(tricky, fc.string({ unit: "grapheme", maxLength: 3 })), { maxLength: 12 }).map((a) => a.join(""));
    const name = fc.stringMatching(/^x-[a-z0-9-]{1,10}$/);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.tuple(name, text), { selector: ([n]) => n, maxLength: 4 }), async (fields) => {
        const headers = new Headers();
        for (const [n, v] of fields) {
          try {
            headers.set(n, v);
          } catch {
            // Headers itself refuses CR, LF and NUL: nothing to send then.
          }
        }
        const { requests, garbage } = await sendRecorded(headers);
        expect(garbage).toBeNull();
        expect(requests).toHaveLength(1);
        for (const [n, v] of headers) {
          if (n === "host") continue;
          expect(hex(value(requests[0]!, n) ?? new Uint8Array()), n).toBe(hex(utf8(v)));
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe("the proxy and a head the transport refuses", () => {
  it("answers 400, logs it at info level, and tries no other node", async () => {
    let calls = 0;
    const refusing: Transport = {
      name: "socket",
      send: async () => {
        calls++;
        throw new InvalidRequestHeadError('CR, LF or NUL in the value of header "x-note"');
      },
    };
    const edge = await edgeWithService(
      { hostnames: ["smuggle.example.com"], nodePort: 30080, policy: { attempts: 3 } },
      [
        { name: "n1", address: "192.0.2.1", healthy: true },
        { name: "n2", address: "192.0.2.2", healthy: true },
      ],
      { EDGELB_TRANSPORT: "socket" },
      { transports: { fetch: refusing, socket: refusing } },
    );
    const res = await edge.request("smuggle.example.com", "/");
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/^edgelb: invalid request header \(request /);
    expect(calls).toBe(1);
    expect(edge.logs.find((l) => l.event === "proxy.bad_request")).toMatchObject({ level: "info", node: expect.any(String) });
    expect(edge.logs.some((l) => l.event === "proxy.retry" || l.event === "proxy.failed")).toBe(false);
  });
});
