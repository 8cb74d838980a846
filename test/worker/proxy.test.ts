// Proxy fidelity, forwarding headers and streaming, over every transport.
import { describe, expect, it } from "vitest";
import { control, edgeWithService, lab, nodesOf, type Echo } from "./helpers.ts";
import { TRANSPORTS } from "./transports.ts";

const MiB = 1024 * 1024;
const shared = nodesOf(lab.nodes);

describe.each(TRANSPORTS)("proxy over the %s transport", (transport) => {
  const vars = { EDGELB_TRANSPORT: transport };
  const edge = () => edgeWithService({ hostnames: ["app.example.com"], nodePort: lab.nodePort }, shared, vars);

  it("preserves method, path, query, body and status", async () => {
    const e = await edge();
    for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]) {
      const body = method === "GET" ? undefined : `payload of ${method} ✓`;
      const res = await e.request("app.example.com", "/a%20b/c.json?x=1&y=%2F&x=2&empty=", { method, ...(body ? { body } : {}) });
      expect(res.status, method).toBe(200);
      const echo = (await res.json()) as Echo;
      expect(echo).toMatchObject({ method, path: "/a%20b/c.json", query: "x=1&y=%2F&x=2&empty=" });
      expect(echo.body).toBe(body ?? "");
      expect(res.headers.get("x-edgelb-node")).toBe(echo.node);
    }
    for (const status of [201, 204, 301, 404, 418, 503]) {
      const res = await e.request("app.example.com", `/status/${status}`);
      expect(res.status).toBe(status);
      await res.body?.cancel();
    }
    const head = await e.request("app.example.com", "/stream?bytes=1234", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("1234");
  });

  it("sets forwarding headers from what the edge knows, never from the client", async () => {
    const e = await edge();
    const res = await e.request("app.example.com", "/", {
      headers: {
        "cf-connecting-ip": "203.0.113.7",
        "x-forwarded-for": "6.6.6.6, 7.7.7.7",
        "x-real-ip": "6.6.6.6",
        "x-forwarded-host": "evil.example.net",
        "x-forwarded-proto": "http",
        forwarded: "for=6.6.6.6;proto=http",
      },
    });
    const { headers } = (await res.json()) as Echo;
    expect(headers["x-forwarded-for"]).toBe("203.0.113.7");
    expect(headers["x-real-ip"]).toBe("203.0.113.7");
    expect(headers["x-forwarded-host"]).toBe("app.example.com");
    expect(headers["x-forwarded-proto"]).toBe("https");
    // EDGELB_FORWARDED is off by default: the client's Forwarded is dropped and none is set.
    expect(headers.forwarded).toBeUndefined();
    if (transport === "socket") expect(headers.host).toBe("app.example.com");
    const withForwarded = await edgeWithService({ hostnames: ["app.example.com"], nodePort: lab.nodePort }, shared, { ...vars, EDGELB_FORWARDED: "true" });
    const res2 = await withForwarded.request("app.example.com", "/", { headers: { "cf-connecting-ip": "203.0.113.7", forwarded: "for=6.6.6.6;proto=http" } });
    expect(((await res2.json()) as Echo).headers.forwarded).toBe("for=203.0.113.7;host=app.example.com;proto=https");
  });

  it("strips hop-by-hop headers, including those named by Connection", async () => {
    const e = await edge();
    const res = await e.request("app.example.com", "/", {
      headers: {
        connection: "keep-alive, x-session-hop",
        "keep-alive": "timeout=5",
        "x-session-hop": "secret",
        "proxy-authorization": "Basic Zm9vOmJhcg==",
        te: "trailers",
        "x-normal": "kept",
      },
    });
    const { headers } = (await res.json()) as Echo;
    expect(headers["x-normal"]).toBe("kept");
    for (const h of ["x-session-hop", "keep-alive", "proxy-authorization", "te"]) expect(headers[h], h).toBeUndefined();
  });

  it("passes an incoming X-Request-Id and generates one otherwise", async () => {
    const e = await edge();
    const given = await e.request("app.example.com", "/", { headers: { "x-request-id": "abc-123" } });
    expect(((await given.json()) as Echo).headers["x-request-id"]).toBe("abc-123");
    const fresh = await e.request("app.example.com", "/");
    const id = ((await fresh.json()) as Echo).headers["x-request-id"];
    expect(id).toMatch(/^[0-9a-f]{16}-[0-9a-z]+$/);
    // EDGELB_ECHO_REQUEST_ID=errors (the default): an answer that is not a 5xx goes back as the app
    // made it, without the id (like Envoy, whose always_set_request_id_in_response is off by default).
    expect(given.headers.get("x-request-id")).toBeNull();
    expect(fresh.headers.get("x-request-id")).toBeNull();
  });

  it("gives the client its X-Request-Id back on a 5xx, and on every answer with EDGELB_ECHO_REQUEST_ID=always", async () => {
    const e = await edge();
    const failed = await e.request("app.example.com", "/status/500");
    expect(failed.status).toBe(500);
    expect(failed.headers.get("x-request-id")).toMatch(/^[0-9a-f]{16}-[0-9a-z]+$/);
    const always = await edgeWithService({ hostnames: ["app.example.com"], nodePort: lab.nodePort }, shared, { ...vars, EDGELB_ECHO_REQUEST_ID: "always" });
    const given = await always.request("app.example.com", "/", { headers: { "x-request-id": "abc-123" } });
    expect(((await given.json()) as Echo).headers["x-request-id"]).toBe("abc-123");
    expect(given.headers.get("x-request-id")).toBe("abc-123");
    const fresh = await always.request("app.example.com", "/");
    expect(fresh.headers.get("x-request-id")).toBe(((await fresh.json()) as Echo).headers["x-request-id"]);
  });

  it("streams a 50 MiB download", async () => {
    const e = await edge();
    const res = await e.request("app.example.com", `/stream?bytes=${50 * MiB}`);
    expect(res.headers.get("content-length")).toBe(String(50 * MiB));
    let bytes = 0;
    for await (const chunk of res.body!) bytes += chunk.byteLength;
    expect(bytes).toBe(50 * MiB);
  });

  it("streams a 50 MiB upload", async () => {
    const e = await edge();
    const block = new Uint8Array(MiB).map((_, i) => (i * 31) % 251);
    const digest = new crypto.DigestStream("SHA-256");
    const writer = digest.getWriter();
    for (let i = 0; i < 50; i++) await writer.write(block);
    await writer.close();
    const expected = [...new Uint8Array(await digest.digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 50) c.enqueue(block.slice());
        else c.close();
      },
    });
    const res = await e.request("app.example.com", "/upload", { method: "POST", body });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ bodyBytes: 50 * MiB, sha256: expected });
  });

  it("hands the first bytes of a response to the client before the origin has finished", async () => {
    const e = await edgeWithService(
      { hostnames: ["lab.example.com"], nodePort: lab.lab.port },
      [{ name: "lab", address: lab.lab.address, healthy: true }],
      vars,
    );
    const gate = `g-${transport}-${Date.now()}`;
    const res = await e.request("lab.example.com", `/gate/${gate}`);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    // The origin holds "last" back until the gate opens: a buffering proxy would never get here.
    expect(decoder.decode((await reader.read()).value)).toBe("first\n");
    await control(`/gates/${gate}/open`);
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += decoder.decode(value);
    }
    expect(rest).toBe("last\n");
  });

  it("streams an upload to the origin while the client is still sending", async () => {
    const e = await edgeWithService(
      { hostnames: ["lab.example.com"], nodePort: lab.lab.port },
      [{ name: "lab", address: lab.lab.address, healthy: true }],
      vars,
    );
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const first = new Uint8Array(100 * 1024).fill(0x61);
    void writer.write(first);
    const res = await e.request("lab.example.com", "/duplex", { method: "POST", body: readable });
    const reader = res.body!.getReader();
    let echoed = 0;
    // The origin echoes what it has received; the request body is still open.
    while (echoed < first.length) echoed += (await reader.read()).value!.byteLength;
    expect(echoed).toBe(first.length);
    await writer.write(new TextEncoder().encode("end"));
    await writer.close();
    let tail = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      tail += new TextDecoder().decode(value);
    }
    expect(tail).toBe("end");
  });
});
