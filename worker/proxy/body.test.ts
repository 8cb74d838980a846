import { describe, expect, it } from "vitest";
import { prepareBody } from "./body.ts";

const KiB = 1024;

function chunked(parts: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i < parts.length) c.enqueue(parts[i++]!);
      else c.close();
    },
  });
}

async function bytesOf(body: BodyInit | null): Promise<Uint8Array> {
  return new Uint8Array(await new Response(body).arrayBuffer());
}

describe("request bodies", () => {
  it("buffers a body with a small Content-Length so it can be sent again", async () => {
    const b = await prepareBody(new Request("https://a/", { method: "POST", body: "x".repeat(64 * KiB) }));
    expect(b.replayable).toBe(true);
    expect((await bytesOf(b.take())).length).toBe(64 * KiB);
    expect((await bytesOf(b.take())).length).toBe(64 * KiB);
  });

  it("streams a body with a large Content-Length, once", async () => {
    const b = await prepareBody(new Request("https://a/", { method: "POST", body: "x".repeat(64 * KiB + 1) }));
    expect(b.replayable).toBe(false);
    expect((await bytesOf(b.take())).length).toBe(64 * KiB + 1);
    expect(() => b.take()).toThrow(/only once/);
  });

  it("buffers a small body of unknown length and streams a large one without losing bytes", async () => {
    const small = await prepareBody(new Request("https://a/", { method: "PUT", body: chunked([new Uint8Array(10 * KiB), new Uint8Array(5)]) }));
    expect(small.replayable).toBe(true);
    expect((await bytesOf(small.take())).length).toBe(10 * KiB + 5);

    const parts = Array.from({ length: 10 }, (_, i) => new Uint8Array(20 * KiB).fill(i));
    const large = await prepareBody(new Request("https://a/", { method: "PUT", body: chunked(parts) }));
    expect(large.replayable).toBe(false);
    const out = await bytesOf(large.take());
    expect(out.length).toBe(200 * KiB);
    for (let i = 0; i < 10; i++) expect(out[i * 20 * KiB]).toBe(i);
  });

  it("has no body for GET and HEAD", async () => {
    const b = await prepareBody(new Request("https://a/"));
    expect(b.replayable).toBe(true);
    expect(b.take()).toBeNull();
  });
});
