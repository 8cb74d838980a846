// What the edge refuses or keeps to itself before and around an origin
// request: hostile header bytes, bodies that cannot be sent as they are, a
// client whose body ends early, and error answers that name nothing internal.
// Against the counting origins of test/worker/request-path.setup.ts.
import { describe, expect, it } from "vitest";
import type { Echo } from "./helpers.ts";
import { edgeWithService, nodesOf } from "./helpers.ts";
import { edge, hits, host, origins, tag } from "./request-path.ts";
import { TRANSPORTS } from "./transports.ts";

const nodeNames = origins.nodes.map((n) => n.name);

/** No node name, address, namespace or cluster in a client-facing body. */
function expectNothingInternal(body: string, cluster: string) {
  for (const n of origins.nodes) {
    expect(body).not.toContain(n.name);
    expect(body).not.toContain(n.address);
  }
  expect(body).not.toContain(origins.deadAddress);
  expect(body).not.toContain("default/web");
  expect(body).not.toContain(cluster);
}

describe.each(TRANSPORTS)("request guard over the %s transport", (transport) => {
  it("refuses header values with control characters before any origin connection, and logs why", async () => {
    const e = await edge(transport);
    for (const value of ["a\u0001b", "bell\u0007", "del\u007f", "esc\u001b[31m"]) {
      const t = tag("ctl");
      const res = await e.request(host, `/echo?tag=${t}`, { headers: { "x-note": value } });
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/^edgelb: bad request: header x-note holds a control character \(request [\w-]+\)\n$/);
      expect((await hits(t)).count).toBe(0);
    }
    expect(e.logs.filter((l) => l.event === "proxy.refused")).toHaveLength(4);
    expect(e.logs.find((l) => l.event === "proxy.refused")).toMatchObject({ level: "info", header: '"x-note"' });
  });

  it("refuses a header name that is not a token", async () => {
    const e = await edge(transport);
    const t = tag("name");
    const res = await e.request(host, `/echo?tag=${t}`, { headers: { "x\u00e9": "1" } });
    expect(res.status).toBe(400);
    expect((await hits(t)).count).toBe(0);
  });

  it("passes tabs and non-ASCII values", async () => {
    const e = await edge(transport);
    const res = await e.request(host, "/echo", { headers: { "x-note": "a\tb", "x-name": "naïve" } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Echo).headers["x-note"]).toBe("a\tb");
  });

  it("refuses a GET that announces a body rather than dropping it", async () => {
    const e = await edge(transport);
    const t = tag("get-body");
    const res = await e.request(host, `/echo?tag=${t}`, { headers: { "content-length": "5" } });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("a GET request must not carry a body");
    expect((await hits(t)).count).toBe(0);
    expect((await e.request(host, "/echo", { headers: { "content-length": "0" } })).status).toBe(200);
  });

  it("drops client-supplied forwarding headers and sets Forwarded (EDGELB_FORWARDED=true)", async () => {
    const e = await edgeWithService({ hostnames: [host], nodePort: origins.port }, nodesOf(origins.nodes), { EDGELB_TRANSPORT: transport, EDGELB_FORWARDED: "true" });
    const forged = {
      "true-client-ip": "6.6.6.6",
      "x-client-ip": "6.6.6.6",
      "x-original-url": "/admin",
      "x-original-forwarded-for": "6.6.6.6",
      "x-forwarded-port": "1",
      "x-forwarded-prefix": "/admin",
      "x-forwarded-server": "evil",
      "x-forwarded-ssl": "on",
      "x-forwarded-scheme": "https",
      forwarded: "for=6.6.6.6",
    };
    const res = await e.request(host, "/echo", { headers: { ...forged, "cf-connecting-ip": "2001:db8::7" } });
    const { headers } = (await res.json()) as Echo;
    for (const name of Object.keys(forged).filter((n) => n !== "forwarded")) expect(headers[name], name).toBeUndefined();
    expect(headers.forwarded).toBe('for="[2001:db8::7]";host=shop.example.com;proto=https');
    expect(headers["x-forwarded-for"]).toBe("2001:db8::7");
  });

  it("sends a browser's request with its own fields and none of the forged or hop-by-hop ones (over fetch(): a copy of the client's fields)", async () => {
    const e = await edge(transport);
    const browser = {
      accept: "text/html",
      "accept-language": "en-GB",
      "user-agent": "Mozilla/5.0",
      cookie: "session=abc",
      "sec-fetch-mode": "navigate",
      "x-trace-hop": "named by Connection",
      connection: "keep-alive, x-trace-hop",
      "keep-alive": "timeout=5",
      "x-forwarded-for": "6.6.6.6",
      "x-forwarded-host": "evil.example",
      "x-forwarded-proto": "http",
      "x-real-ip": "6.6.6.6",
      "x-edgelb-signature": "forged",
      "cf-connecting-ip": "203.0.113.7",
      "x-request-id": "client-id-1",
    };
    const res = await e.request(host, "/echo", { headers: browser });
    expect(res.status).toBe(200);
    const { headers } = (await res.json()) as Echo;
    for (const name of ["accept", "accept-language", "user-agent", "cookie", "sec-fetch-mode"] as const) expect(headers[name], name).toBe(browser[name]);
    for (const name of ["x-trace-hop", "keep-alive", "x-edgelb-signature"]) expect(headers[name], name).toBeUndefined();
    expect(headers["x-forwarded-for"]).toBe("203.0.113.7");
    expect(headers["x-real-ip"]).toBe("203.0.113.7");
    expect(headers["x-forwarded-host"]).toBe(host);
    expect(headers["x-forwarded-proto"]).toBe("https");
    expect(headers["x-request-id"]).toBe("client-id-1");
  });
});

describe.each(TRANSPORTS)("request bodies over the %s transport", (transport) => {
  it("starts a trickling upload of unknown length at once", async () => {
    const e = await edge(transport);
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    void writer.write(new TextEncoder().encode("first line\n"));
    // The origin echoes as it receives: the answer's first bytes come while the upload is still open.
    const res = await e.request(host, "/duplex", { method: "POST", body: readable });
    const reader = res.body!.getReader();
    let echoed = "";
    while (echoed.length < "first line\n".length) echoed += new TextDecoder().decode((await reader.read()).value);
    expect(echoed).toBe("first line\n");
    await writer.write(new TextEncoder().encode("second\n"));
    await writer.close();
    let tail = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      tail += new TextDecoder().decode(value);
    }
    expect(tail).toBe("second\n");
  }, 10_000);

  it("answers 400 to a client whose body is shorter than its Content-Length, and blames no node", async () => {
    const e = await edge(transport);
    const t = tag("short");
    const res = await e.request(host, `/echo?tag=${t}`, { method: "POST", headers: { "content-length": "100" }, body: "short" });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("bad request: request body ended after 5 of 100 bytes");
    expect((await hits(t)).count).toBe(0);
    expect(e.logs.find((l) => l.event === "proxy.client_body_failed")).toMatchObject({ level: "info" });
    expect(e.logs.some((l) => l.level === "error")).toBe(false);
    expect([...e.health.keys()]).toEqual([]);
  });

  it("answers 400 to a large upload that ends early or whose client hangs up, and blames no node", async () => {
    const e = await edge(transport);
    const declared = 1024 * 1024;
    for (const ending of ["ends", "hangs up"]) {
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent < 128 * 1024) {
            sent += 16 * 1024;
            c.enqueue(new Uint8Array(16 * 1024));
          } else if (ending === "ends") c.close();
          else c.error(new Error("client disconnected"));
        },
      });
      const res = await e.request(host, `/echo?tag=${tag("early")}`, { method: "POST", headers: { "content-length": String(declared) }, body });
      expect(res.status, ending).toBe(400);
      expect(await res.text()).toContain("bad request: the request body ended early");
    }
    expect(e.logs.filter((l) => l.event === "proxy.client_body_failed").every((l) => l.level === "info")).toBe(true);
    expect(e.logs.some((l) => l.level === "error" || l.event === "proxy.retry")).toBe(false);
    expect([...e.health.keys()]).toEqual([]);
  });
});

describe("error bodies", () => {
  it("name no node, address, namespace or cluster, only the request id", async () => {
    const dead = await edge("socket", {}, [{ name: "rp-dead", address: origins.deadAddress, healthy: true }]);
    const res = await dead.request(host, "/", { headers: { "x-request-id": "req-502" } });
    expect(res.status).toBe(502);
    const body = await res.text();
    expect(body).toBe("edgelb: the site could not be reached (request req-502)\n");
    expectNothingInternal(body, dead.cluster);
    // The log line with that id has the details.
    expect(dead.logs.find((l) => l.event === "proxy.failed" && l.requestId === "req-502")).toMatchObject({ node: "rp-dead" });

    const slow = await edge("socket", { responseTimeoutMs: 200 }, nodesOf(origins.nodes.slice(0, 1)));
    const timedOut = await slow.request(host, "/hang", { method: "POST", body: "x", headers: { "x-request-id": "req-504" } });
    expect(timedOut.status).toBe(504);
    const text504 = await timedOut.text();
    expect(text504).toBe("edgelb: the site did not answer in time (request req-504)\n");
    expectNothingInternal(text504, slow.cluster);
    expect(nodeNames).toContain(slow.logs.find((l) => l.event === "proxy.failed")?.node);
  });

  it("say no more than 'not ready' when a Service has no origin", async () => {
    const none = await edgeWithService(
      { name: "checkout", namespace: "shop", hostnames: [host], nodePort: origins.port, trafficPolicy: "Local", endpoints: [] },
      nodesOf(origins.nodes),
    );
    const res = await none.request(host, "/", { headers: { "x-request-id": "req-503" } });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("10");
    const body = await res.text();
    expect(body).toBe("edgelb: no server is ready for this site (request req-503)\n");
    expect(body).not.toContain("shop");
    expect(none.logs.find((l) => l.event === "proxy.no_origins")).toMatchObject({ requestId: "req-503", services: expect.stringContaining("shop/checkout") });
  });
});
