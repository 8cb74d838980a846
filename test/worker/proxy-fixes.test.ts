// Proxy defects found in review of issue 11, against fake transports: what a
// client can trigger must not eject nodes, the retry budget and Retry-After
// clocks, and per-Service retry budgets.
import { describe, expect, it } from "vitest";
import { ConnectError, MalformedResponseError, ResponseTimeoutError, type OriginRequest, type Transport } from "../../worker/transport/types.ts";
import { edgeWithService, service, snapshot, testEdge, uniqueCluster } from "./helpers.ts";

const nodes = [
  { name: "n1", address: "192.0.2.1", healthy: true },
  { name: "n2", address: "192.0.2.2", healthy: true },
];

function fake(send: (req: OriginRequest) => Promise<Response>): { transports: { fetch: Transport; socket: Transport }; calls: string[] } {
  const calls: string[] = [];
  const wrap = (name: "fetch" | "socket"): Transport => ({
    name,
    send: (req) => {
      calls.push(req.origin.node);
      return send(req);
    },
  });
  return { transports: { fetch: wrap("fetch"), socket: wrap("socket") }, calls };
}

describe("failures a client can provoke", () => {
  it("response timeouts count like 5xx answers, not as connection failures (no ejection after 3)", async () => {
    const { transports } = fake(async (req) => {
      throw new ResponseTimeoutError("no response head in time", req.origin);
    });
    const e = await edgeWithService({ hostnames: ["slow.example.com"], nodePort: 30080, policy: { attempts: 1 } }, nodes, { EDGELB_TRANSPORT: "socket" }, { transports });
    for (let i = 0; i < 8; i++) expect((await e.request("slow.example.com", "/slow")).status).toBe(504);
    // 4 timeouts per node: a connection streak (3) would have ejected one, the 5xx streak (5) does not.
    expect(e.logs.some((l) => l.event === "node.ejected")).toBe(false);
    expect((await e.request("slow.example.com", "/slow")).status).toBe(504);
    expect((await e.request("slow.example.com", "/slow")).status).toBe(504);
    expect(e.logs.find((l) => l.event === "node.ejected")).toMatchObject({ kind: "status" });
  });

  it("malformed answers count as 5xx answers", async () => {
    const { transports } = fake(async (req) => {
      throw new MalformedResponseError("not HTTP", req.origin);
    });
    const e = await edgeWithService({ hostnames: ["bad.example.com"], nodePort: 30080, policy: { attempts: 1 } }, nodes, { EDGELB_TRANSPORT: "socket" }, { transports });
    for (let i = 0; i < 10; i++) expect((await e.request("bad.example.com", "/")).status).toBe(502);
    expect(e.logs.find((l) => l.event === "node.ejected")).toMatchObject({ kind: "status", consecutiveFailures: 5 });
  });
});

describe("Retry-After", () => {
  it("reads an HTTP-date against the edge's clock, not the wall clock", async () => {
    const t0 = Date.parse("2020-01-01T00:00:00Z");
    let first = true;
    const { transports, calls } = fake(async () => {
      if (first) {
        first = false;
        return new Response("busy", { status: 503, headers: { "retry-after": new Date(t0 + 30_000).toUTCString() } });
      }
      return new Response("busy", { status: 503 });
    });
    const e = await edgeWithService({ hostnames: ["ra.example.com"], nodePort: 30080, policy: { attempts: 2 } }, nodes, { EDGELB_TRANSPORT: "socket" }, { transports, now: () => t0 });
    expect((await e.request("ra.example.com", "/")).status).toBe(503);
    expect(calls.length).toBe(1);
    // The Service is on hold for 30 s of the edge's clock: its next 503 is not retried.
    expect((await e.request("ra.example.com", "/")).status).toBe(503);
    expect(calls.length).toBe(2);
    expect(e.logs.find((l) => l.event === "proxy.retry")).toBeUndefined();
  });
});

describe("retry budget", () => {
  it("is kept per Service, and a connection refused before any byte needs none", async () => {
    const firsts = new Set<string>();
    const { transports } = fake(async (req) => {
      const host = req.request.headers.get("host")!;
      if (host === "flood.example.com") {
        if (req.request.method === "POST" && !firsts.has("flood-post")) {
          firsts.add("flood-post");
          throw new ConnectError("connection refused", req.origin);
        }
        if (req.request.method === "POST") return new Response(`posted ${await new Response(req.request.body).text()}`);
        return new Response("down", { status: 503 });
      }
      if (!firsts.has(host)) {
        firsts.add(host);
        return new Response("down", { status: 503 });
      }
      return new Response("ok");
    });
    const cluster = uniqueCluster();
    const e = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_TRANSPORT: "socket" }, { transports });
    await e.seed(
      snapshot(cluster, nodes, [
        service({ name: "flood", hostnames: ["flood.example.com"], nodePort: 30080 }),
        service({ name: "other", hostnames: ["other.example.com"], nodePort: 30081 }),
      ]),
    );
    for (let i = 0; i < 20; i++) expect((await e.request("flood.example.com", "/")).status).toBe(503);
    expect(e.logs.some((l) => l.event === "proxy.retry_budget_spent")).toBe(true);
    // Another Service still has its own budget.
    const other = await e.request("other.example.com", "/");
    expect(other.status).toBe(200);
    // A refused connection (nothing sent) moves on even with the Service's budget spent.
    const post = await e.request("flood.example.com", "/", { method: "POST", body: "order" });
    expect(post.status).toBe(200);
    expect(await post.text()).toBe("posted order");
  });
});

describe("a streamed body and a refused connection", () => {
  it("passes the untouched stream to the next node", async () => {
    let first = true;
    const { transports, calls } = fake(async (req) => {
      if (first) {
        first = false;
        throw new ConnectError("connection refused", req.origin);
      }
      return new Response(`got ${await new Response(req.request.body).text()}`);
    });
    const e = await edgeWithService({ hostnames: ["up.example.com"], nodePort: 30080 }, nodes, { EDGELB_TRANSPORT: "socket" }, { transports });
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("chunked upload"));
        c.close();
      },
    });
    const res = await e.request("up.example.com", "/", { method: "POST", body });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("got chunked upload");
    expect(calls.length).toBe(2);
  });
});

describe("a client body that stops arriving", () => {
  it("answers 408 after the idle timeout, logged at info, no node blamed", async () => {
    const { transports, calls } = fake(async (req) => new Response(`got ${await new Response(req.request.body).text()}`));
    const e = await edgeWithService(
      { hostnames: ["trickle.example.com"], nodePort: 30080 },
      nodes,
      { EDGELB_TRANSPORT: "socket", EDGELB_CLIENT_BODY_TIMEOUT_MS: "50" } as Record<string, string>,
      { transports },
    );
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("first byte, then nothing"));
      },
    });
    const res = await e.request("trickle.example.com", "/", { method: "POST", body });
    expect(res.status).toBe(408);
    expect(calls.length).toBe(1);
    expect(e.logs.find((l) => l.event === "proxy.client_body_timeout")).toMatchObject({ level: "info" });
    expect(e.logs.some((l) => l.event === "node.ejected" || l.event === "proxy.failed" || l.event === "proxy.retry")).toBe(false);
  });

  it("answers 408 for a small body with a Content-Length that stalls", async () => {
    const { transports, calls } = fake(async () => new Response("ok"));
    const e = await edgeWithService(
      { hostnames: ["trickle2.example.com"], nodePort: 30080 },
      nodes,
      { EDGELB_TRANSPORT: "socket", EDGELB_CLIENT_BODY_TIMEOUT_MS: "50" } as Record<string, string>,
      { transports },
    );
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("abc"));
      },
    });
    const res = await e.request("trickle2.example.com", "/", { method: "POST", body, headers: { "content-length": "10" } });
    expect(res.status).toBe(408);
    expect(calls.length).toBe(0);
  });
});
