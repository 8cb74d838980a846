import { describe, expect, it } from "vitest";
import { prepareBody, type PreparedBody } from "./body.ts";

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

async function bytesOf(body: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  return new Uint8Array(await new Response(body).arrayBuffer());
}

async function ready(request: Request): Promise<PreparedBody> {
  const out = await prepareBody(request);
  if (!out.ok) throw out.error;
  return out.body;
}

describe("request bodies", () => {
  it("buffers a body with a small Content-Length so it can be sent again", async () => {
    const body = "x".repeat(64 * KiB);
    const b = await ready(new Request("https://a/", { method: "POST", headers: { "content-length": String(body.length) }, body }));
    expect(b.replayable).toBe(true);
    expect(b.started).toBe(false);
    expect((await bytesOf(b.take())).length).toBe(64 * KiB);
    expect(b.started).toBe(true);
    // A new attempt starts unsent and gets every byte again.
    const again = b.take();
    expect(b.started).toBe(false);
    expect((await bytesOf(again)).length).toBe(64 * KiB);
  });

  it("streams a body with a large Content-Length, once", async () => {
    const b = await ready(new Request("https://a/", { method: "POST", headers: { "content-length": String(64 * KiB + 1) }, body: "x".repeat(64 * KiB + 1) }));
    expect(b.replayable).toBe(false);
    expect((await bytesOf(b.take())).length).toBe(64 * KiB + 1);
    expect(() => b.take()).toThrow(/only once/);
  });

  it("streams a body of unknown length at once, whatever its size, without losing bytes", async () => {
    const small = await ready(new Request("https://a/", { method: "PUT", body: chunked([new Uint8Array(10 * KiB), new Uint8Array(5)]) }));
    expect(small.replayable).toBe(false);
    expect((await bytesOf(small.take())).length).toBe(10 * KiB + 5);

    const parts = Array.from({ length: 10 }, (_, i) => new Uint8Array(20 * KiB).fill(i));
    const large = await ready(new Request("https://a/", { method: "PUT", body: chunked(parts) }));
    const out = await bytesOf(large.take());
    expect(out.length).toBe(200 * KiB);
    for (let i = 0; i < 10; i++) expect(out[i * 20 * KiB]).toBe(i);
  });

  it("hands out the first chunk of a trickling upload before the client sends the next", async () => {
    let more!: ReadableStreamDefaultController<Uint8Array>;
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        more = c;
        c.enqueue(new TextEncoder().encode("first"));
      },
    });
    const b = await ready(new Request("https://a/", { method: "POST", body: source }));
    const reader = b.take()!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("first");
    more.close();
    expect((await reader.read()).done).toBe(true);
  });

  it("refuses a buffered body shorter than its Content-Length", async () => {
    const out = await prepareBody(new Request("https://a/", { method: "POST", headers: { "content-length": "100" }, body: "short" }));
    expect(out.ok).toBe(false);
    expect(!out.ok && out.error.message).toBe("request body ended after 5 of 100 bytes");
  });

  it("fails a streamed body that ends short of its Content-Length, and says the client did it", async () => {
    const b = await ready(
      new Request("https://a/", { method: "POST", headers: { "content-length": String(100 * KiB) }, body: chunked([new Uint8Array(KiB)]) }),
    );
    await expect(bytesOf(b.take())).rejects.toThrow(/ended after 1024 of 102400 bytes/);
    expect(b.clientError?.name).toBe("ClientBodyError");
  });

  it("fails a streamed body whose client went away", async () => {
    let n = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        if (n++ === 0) c.enqueue(new Uint8Array(10));
        else c.error(new Error("client disconnected"));
      },
    });
    const b = await ready(new Request("https://a/", { method: "POST", body: source }));
    await expect(bytesOf(b.take())).rejects.toThrow(/failed after 10 bytes: client disconnected/);
    expect(b.clientError).toBeDefined();
  });

  it("has no body for a bodiless request", async () => {
    const b = await ready(new Request("https://a/"));
    expect(b.replayable).toBe(true);
    expect(b.take()).toBeNull();
  });
});
