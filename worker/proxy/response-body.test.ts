import { describe, expect, inject, it } from "vitest";
import { declaredLength, encodeBodyFor, relayBody } from "./response-body.ts";

const enc = new TextEncoder();

function origin(parts: string[], opts: { status?: number; headers?: Record<string, string>; failAtEnd?: boolean } = {}) {
  let i = 0;
  let cancelled: unknown;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < parts.length) c.enqueue(enc.encode(parts[i++]));
      else if (opts.failAtEnd) c.error(new Error("origin went away"));
      else c.close();
    },
    cancel(reason) {
      cancelled = reason ?? "cancelled";
    },
  });
  const res = new Response(body, { status: opts.status ?? 200, headers: opts.headers ?? {} });
  return { res, cancelled: () => cancelled };
}

function counter() {
  let n = 0;
  return { fn: () => void n++, get calls() { return n; } };
}

describe("declaredLength", () => {
  it("takes a plain Content-Length and refuses what the client would not get byte for byte", () => {
    expect(declaredLength(new Headers({ "content-length": "1234" }))).toBe(1234);
    expect(declaredLength(new Headers({ "content-length": "0", "content-encoding": "identity" }))).toBe(0);
    expect(declaredLength(new Headers({ "content-length": "1234", "content-encoding": "gzip" }))).toBeUndefined();
    expect(declaredLength(new Headers([["content-length", "5"], ["content-length", "7"]]))).toBeUndefined();
    for (const bad of ["", "-1", "1e3", "12 34", "9999999999999999"]) {
      expect(declaredLength(new Headers({ "content-length": bad })), bad).toBeUndefined();
    }
    expect(declaredLength(new Headers())).toBeUndefined();
  });

  it("keeps an encoded body's length only when its bytes pass as the origin sent them", () => {
    const gzip = new Headers({ "content-length": "321", "content-encoding": "gzip" });
    expect(declaredLength(gzip, true)).toBe(321);
    expect(encodeBodyFor(gzip, true)).toBe("manual");
    expect(encodeBodyFor(gzip, false)).toBe("automatic");
    expect(encodeBodyFor(new Headers({ "content-length": "321" }), true)).toBe("automatic");
  });
});

describe("relayBody", () => {
  it("relays every byte and reports the end once", async () => {
    const { res } = origin(["hello ", "world"], { headers: { "content-length": "11" } });
    const done = counter();
    const out = relayBody("GET", res, done.fn)!;
    expect(await new Response(out).text()).toBe("hello world");
    await expect.poll(() => done.calls).toBe(1);
  });

  it("fails the client's read when the origin sends less than it declared", async () => {
    const { res } = origin(["only ten b"], { headers: { "content-length": "100" } });
    const done = counter();
    const out = relayBody("GET", res, done.fn)!;
    await expect(new Response(out).text()).rejects.toThrow();
    await expect.poll(() => done.calls).toBe(1);
  });

  it("fails the client's read when a body without a length breaks", async () => {
    const { res } = origin(["part"], { failAtEnd: true });
    const done = counter();
    await expect(new Response(relayBody("GET", res, done.fn)).text()).rejects.toThrow();
    await expect.poll(() => done.calls).toBe(1);
  });

  it("lets go of the origin once the client has gone away", async () => {
    let cancelled: unknown;
    let more: () => void = () => {};
    const origin = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode("first"));
        more = () => c.enqueue(enc.encode("more"));
      },
      cancel(reason) {
        cancelled = reason ?? "cancelled";
      },
    });
    const done = counter();
    const reader = relayBody("GET", new Response(origin), done.fn)!.getReader();
    expect((await reader.read()).value).toBeDefined();
    await reader.cancel("client left");
    more();
    await expect.poll(() => cancelled).toBeDefined();
    await expect.poll(() => done.calls).toBe(1);
  });

  it("hands a body the transport relays natively itself on as is, leaving the end to the transport", () => {
    const { res } = origin(["raw bytes"], { headers: { "content-length": "9" } });
    const body = res.body;
    const done = counter();
    expect(relayBody("GET", res, done.fn, true, true)).toBe(body);
    expect(done.calls).toBe(0);
  });

  it("pipes a fetch() body natively, whole and with its length, and reports the end once", async () => {
    const o = inject("socketOrigins");
    const size = 3 * 1024 * 1024 + 7;
    const upstream = await fetch(`http://${o.nodes[0]!.address}:${o.nodePort}/stream?bytes=${size}`);
    const done = counter();
    const out = new Response(relayBody("GET", upstream, done.fn));
    expect((await out.arrayBuffer()).byteLength).toBe(size);
    await expect.poll(() => done.calls).toBe(1);
  });

  it("hands no body for HEAD, 204 and 304 and reports the end at once", () => {
    const head = origin([""], { headers: { "content-length": "1234" } });
    const done = counter();
    expect(relayBody("HEAD", head.res, done.fn)).toBeNull();
    expect(done.calls).toBe(1);
    expect(head.cancelled()).toBeDefined();
    for (const status of [204, 304]) {
      const done = counter();
      expect(relayBody("GET", new Response(null, { status }), done.fn), String(status)).toBeNull();
      expect(done.calls).toBe(1);
    }
  });
});
