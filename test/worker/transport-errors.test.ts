// The transport error contract (worker/transport/types.ts) that the proxy's
// retry rule stands on, over both transports against real loopback origins:
// ConnectError only while nothing of the request was written; after that
// UpstreamResetError, ResponseTimeoutError or MalformedResponseError. And the
// response-head deadline runs from the end of the upload, not from connect.
import { describe, expect, inject, it } from "vitest";
import { createFetchTransport } from "../../worker/transport/fetch/index.ts";
import { socketTransport } from "../../worker/transport/socket/index.ts";
import {
  ConnectError,
  type Origin,
  ResponseTimeoutError,
  type Transport,
  UpstreamResetError,
} from "../../worker/transport/types.ts";
import { recordingId } from "./socket-recorder.ts";

const o = inject("socketOrigins");
const recorder: Origin = { node: "recorder", address: o.recorder.address, port: o.recorder.port, scheme: "http" };
const rawOrigin: Origin = { node: "raw", address: o.raw.address, port: o.raw.port, scheme: "http" };
const dead: Origin = { node: "dead", address: o.deadAddress, port: o.nodePort, scheme: "http" };
const transports: [string, Transport][] = [
  ["socket", socketTransport],
  ["fetch", createFetchTransport()],
];

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

const send = (t: Transport, origin: Origin, path: string, init: RequestInit = {}, responseTimeoutMs = 5000) =>
  t.send({ origin, request: new Request(`http://ignored.invalid${path}`, init), connectTimeoutMs: 2000, responseTimeoutMs });

/** An upload of `chunks` pieces, one every `everyMs` (a slow link), of `size` bytes each. */
function slowBody(chunks: number, size: number, everyMs: number): ReadableStream<Uint8Array> {
  let n = 0;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (n === chunks) return c.close();
      if (n++ > 0) await new Promise((r) => setTimeout(r, everyMs));
      c.enqueue(new Uint8Array(size).fill(0x61));
    },
  });
}

describe("socket transport: ConnectError only before any request byte", () => {
  it("a refused connection is a ConnectError", async () => {
    expect(await rejection(send(socketTransport, dead, "/"))).toBeInstanceOf(ConnectError);
  });

  it("a TLS handshake the origin breaks off is a ConnectError (no request byte went out)", async () => {
    const e = await rejection(send(socketTransport, { node: "probe", address: o.tlsProbe.address, port: o.tlsProbe.port, scheme: "https" }, "/"));
    expect(e).toBeInstanceOf(ConnectError);
  });

  for (const c of ["close-now", "reset"]) {
    it(`a connection that is ${c === "reset" ? "reset" : "closed"} after the request was sent is an UpstreamResetError, not a ConnectError`, async () => {
      const e = await rejection(send(socketTransport, rawOrigin, `/raw/${c}`, { method: "POST", body: "charge the card" }));
      expect(e).toBeInstanceOf(UpstreamResetError);
      expect(e).not.toBeInstanceOf(ConnectError);
      expect(e.message).toContain(`${o.raw.address}:${o.raw.port}`);
    });
  }

  it("a plain-TCP origin that hangs up after the first request byte is an UpstreamResetError", async () => {
    const e = await rejection(send(socketTransport, { node: "probe", address: o.tlsProbe.address, port: o.tlsProbe.port, scheme: "http" }, "/"));
    expect(e).toBeInstanceOf(UpstreamResetError);
  });

  it("an origin that stops reading the request body is a ResponseTimeoutError, not a hang", async () => {
    let sent = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        sent++;
        c.enqueue(new Uint8Array(1 << 20));
      },
    });
    const e = await rejection(
      send(socketTransport, recorder, `/rec/${recordingId("stall")}?answer=never&pause=1`, { method: "PUT", body: endless }, 300),
    );
    expect(e).toBeInstanceOf(ResponseTimeoutError);
    expect(e.message).toMatch(/took no request body bytes for 300 ms/);
    expect(sent).toBeGreaterThan(0);
  });
});

describe("fetch transport: a failure that cannot tell whether bytes went out is never a ConnectError", () => {
  it("a refused connection is an UpstreamResetError naming the node (fetch() says only 'Network connection lost')", async () => {
    const e = await rejection(send(createFetchTransport(), dead, "/"));
    expect(e).toBeInstanceOf(UpstreamResetError);
    expect(e.message).toContain(`dead (${o.deadAddress}:${o.nodePort})`);
  });

  it("a reset after the request is an UpstreamResetError", async () => {
    const e = await rejection(send(createFetchTransport(), rawOrigin, "/raw/reset", { method: "POST", body: "x" }));
    expect(e).toBeInstanceOf(UpstreamResetError);
  });
});

/**
 * The uploads below take twice the response deadline, so a deadline counted from the request's start would expire
 * mid-upload; the deadline itself is room for the origin's answer once the body is in. 250 ms was too little for
 * that answer with two test files on busy cores (load 16).
 */
const UPLOAD_DEADLINE_MS = 1_000;
const UPLOAD_CHUNKS = 8;
/** Between chunks: the whole upload takes 2 × UPLOAD_DEADLINE_MS. */
const UPLOAD_EVERY_MS = (2 * UPLOAD_DEADLINE_MS) / (UPLOAD_CHUNKS - 1);

describe.each(transports)("the response deadline starts after the upload (%s transport)", (_name, transport) => {
  it("a slow upload that takes longer than responseTimeoutMs still gets the origin's 200", async () => {
    const started = Date.now();
    const res = await send(
      transport,
      recorder,
      `/rec/${recordingId("slow-upload")}?answer=body`,
      { method: "PUT", body: slowBody(UPLOAD_CHUNKS, 1000, UPLOAD_EVERY_MS), headers: { "content-length": String(UPLOAD_CHUNKS * 1000) } },
      UPLOAD_DEADLINE_MS,
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ bodyBytes: UPLOAD_CHUNKS * 1000 });
    expect(Date.now() - started, "the upload outlasted the deadline").toBeGreaterThan(1.5 * UPLOAD_DEADLINE_MS);
  });

  it("a slow chunked upload (no Content-Length) too", async () => {
    const res = await send(transport, recorder, `/rec/${recordingId("slow-chunked")}?answer=body`, { method: "POST", body: slowBody(UPLOAD_CHUNKS, 10, UPLOAD_EVERY_MS) }, UPLOAD_DEADLINE_MS);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ bodyBytes: UPLOAD_CHUNKS * 10 });
  });

  it("the deadline still holds once the body is sent", async () => {
    const e = await rejection(send(transport, recorder, `/rec/${recordingId("silent")}?answer=never`, { method: "POST", body: "x" }, 200));
    expect(e).toBeInstanceOf(ResponseTimeoutError);
  });
});
