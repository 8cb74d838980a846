// Which bodies of unknown length the fetch() transport pipes (counted as in flight until they end)
// and which it hands over at the head (review rv-proxy 4: streaming answers stay visible to least-request).
import { describe, expect, it } from "vitest";
import { createFetchTransport, isStreamOrDownload } from "./index.ts";

const typed = (type?: string) => new Headers(type === undefined ? {} : { "content-type": type });

describe("isStreamOrDownload", () => {
  it("counts streams the app keeps open and likely downloads until their end", () => {
    for (const t of [
      "text/event-stream",
      "Text/Event-Stream; charset=utf-8",
      "application/x-ndjson",
      "application/jsonl",
      "application/grpc-web+proto",
      "application/grpc",
      "multipart/x-mixed-replace; boundary=frame",
      "application/octet-stream",
      "video/mp4",
      "audio/mpeg",
      "application/zip",
    ]) {
      expect(isStreamOrDownload(typed(t)), t).toBe(true);
    }
    // Nothing says it is small.
    expect(isStreamOrDownload(typed())).toBe(true);
  });

  it("hands over a chunked page or API answer at its head", () => {
    for (const t of ["application/json", "text/html; charset=utf-8", "text/plain", "application/javascript", "text/css", "application/xml", "image/svg+xml"]) {
      expect(isStreamOrDownload(typed(t)), t).toBe(false);
    }
  });
});

describe("the origin's fields", () => {
  it("go to fetch() as the plain record the proxy built, and no Headers object is made for them", async () => {
    const given: RequestInit[] = [];
    const transport = createFetchTransport(async (_url, init) => {
      given.push(init!);
      return new Response("{}", { headers: { "content-type": "application/json" } });
    });
    const fields = { host: "shop.example.com", accept: "*/*", "x-request-id": "rid" };
    const res = await transport.send({
      origin: { node: "node-1", address: "origin.example.com", port: 8080, scheme: "http" },
      request: {
        method: "GET",
        url: "https://shop.example.com/a?b=1",
        fields,
        get headers(): Headers {
          throw new Error("the Headers object was built");
        },
        body: null,
      },
      connectTimeoutMs: 1000,
      responseTimeoutMs: 1000,
    });
    expect(res.status).toBe(200);
    expect(given).toHaveLength(1);
    expect(given[0]!.headers).toBe(fields);
  });
});

describe("what the transport reads once", () => {
  const origin = { node: "node-1", address: "origin.example.com", port: 8080, scheme: "http" as const };

  it("asks fetch() for the path and query the proxy already read (target), not the URL's again", async () => {
    const urls: string[] = [];
    const transport = createFetchTransport(async (url) => {
      urls.push(String(url));
      return new Response("ok", { headers: { "content-type": "text/plain" } });
    });
    await transport.send({
      origin,
      request: { method: "GET", url: "https://shop.example.com/ignored?x=1", target: "/a?b=1", fields: { host: "shop.example.com" }, headers: new Headers(), body: null },
      connectTimeoutMs: 1000,
      responseTimeoutMs: 1000,
    });
    expect(urls).toEqual(["http://origin.example.com:8080/a?b=1"]);
  });

  it("hands the proxy the status, fields and body it read of the Response it returns as is (onHead)", async () => {
    for (const [method, answer] of [
      ["GET", () => new Response("small", { headers: { "content-type": "text/plain", "content-length": "5" } })],
      ["GET", () => new Response("chunked page", { headers: { "content-type": "text/html" } })],
      ["HEAD", () => new Response(null, { status: 200 })],
      ["GET", () => new Response(null, { status: 204 })],
    ] as const) {
      const heads: unknown[][] = [];
      const transport = createFetchTransport(async () => answer());
      const res = await transport.send({
        origin,
        request: { method, url: "https://shop.example.com/", fields: { host: "shop.example.com" }, headers: new Headers(), body: null },
        connectTimeoutMs: 1000,
        responseTimeoutMs: 1000,
        onHead: (...args) => void heads.push(args),
      });
      expect(heads).toHaveLength(1);
      const [response, status, headers, body] = heads[0]!;
      expect(response).toBe(res);
      expect(status).toBe(res.status);
      expect(headers).toBe(res.headers);
      expect(body).toBe(res.body);
    }
  });

  it("does not call onHead for a body it pipes (the Response it returns is a new one)", async () => {
    const heads: unknown[] = [];
    const transport = createFetchTransport(async () => new Response("data: 1\n\n", { headers: { "content-type": "text/event-stream" } }));
    const res = await transport.send({
      origin,
      request: { method: "GET", url: "https://shop.example.com/", fields: { host: "shop.example.com" }, headers: new Headers(), body: null },
      connectTimeoutMs: 1000,
      responseTimeoutMs: 1000,
      onHead: (r) => void heads.push(r),
    });
    expect(await res.text()).toBe("data: 1\n\n");
    expect(heads).toEqual([]);
  });
});
