// The retry rule, the retry budget and Retry-After, against real loopback
// origins that count every request they get (test/worker/request-path.setup.ts):
// a request that may have run is never sent to a second node unless it is
// idempotent or its Service opted in.
import { describe, expect, it } from "vitest";
import { nodesOf } from "./helpers.ts";
import { edge, hits, host, origins, tag } from "./request-path.ts";
import { TRANSPORTS } from "./transports.ts";

describe.each(TRANSPORTS)("retry rule over the %s transport", (transport) => {
  it("passes a POST's 503 to the client after one try, and retries a GET's", async () => {
    const e = await edge(transport);
    const post = tag("post-503");
    const res = await e.request(host, `/status/503?tag=${post}`, { method: "POST", body: "order" });
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/^rp-[abc]: 503/);
    expect((await hits(post)).count).toBe(1);

    const get = tag("get-503");
    expect((await e.request(host, `/status/503?tag=${get}`)).status).toBe(503);
    expect((await hits(get)).count).toBe(3);
  });

  it("retries a POST on 503 and after a reset when the Service opted in", async () => {
    const e = await edge(transport, { retryNonIdempotent: true });
    const t = tag("post-optin");
    expect((await e.request(host, `/status/503?tag=${t}`, { method: "POST", body: "order" })).status).toBe(503);
    expect((await hits(t)).count).toBe(3);
    const r = tag("post-optin-reset");
    expect((await e.request(host, `/reset-after-read?tag=${r}`, { method: "POST", body: "order" })).status).toBe(502);
    expect((await hits(r)).count).toBe(3);
  });

  it("never streams a chunked upload of unknown length to a second node", async () => {
    const e = await edge(transport);
    const t = tag("chunked-503");
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("small but of unknown length"));
        c.close();
      },
    });
    expect((await e.request(host, `/status/503?tag=${t}`, { method: "PUT", body })).status).toBe(503);
    expect((await hits(t)).count).toBe(1);
  });
});

// Only the socket transport knows whether a byte went out: fetch() cannot tell a
// refused connection from a reset one, and its transport reports both as "may
// have run" (UpstreamResetError), so there POSTs never move on.
describe("retry rule where the transport can tell (socket)", () => {
  it("sends a POST whose node resets after reading it to that node only, and tries a PUT on every node", async () => {
    const e = await edge("socket");
    const post = tag("post-reset");
    const res = await e.request(host, `/reset-after-read?tag=${post}`, { method: "POST", body: "charge the card" });
    expect(res.status).toBe(502);
    expect((await hits(post)).count).toBe(1);
    expect(e.logs.find((l) => l.event === "proxy.failed")).toMatchObject({ noRetry: "POST is not idempotent and may have run" });

    const put = tag("put-reset");
    expect((await e.request(host, `/reset-after-read?tag=${put}`, { method: "PUT", body: "same again" })).status).toBe(502);
    expect((await hits(put)).count).toBe(3);
  });

  it("moves a POST on when its first node refuses the connection", async () => {
    const dead = { name: "rp-dead", address: "127.12.0.99", healthy: true };
    const e = await edge("socket", {}, [dead, ...nodesOf(origins.nodes)]);
    const t = tag("post-refused");
    const res = await e.request(host, `/echo?tag=${t}`, { method: "POST", body: "once" });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { body: string }).body).toBe("once");
    expect((await hits(t)).count).toBe(1);
  });

});

describe("retry budget and Retry-After", () => {
  it("does not hit an overloaded app (every node 503) about three times per request", async () => {
    const e = await edge("socket");
    const t = tag("overload");
    const requests = 50;
    for (let i = 0; i < requests; i++) expect((await e.request(host, `/status/503?tag=${t}&i=${i}`)).status).toBe(503);
    // 20% of requests plus a small floor, instead of 3 attempts each.
    expect((await hits(t)).count).toBeLessThanOrEqual(requests * 1.25);
    // Said once, not once per request.
    expect(e.logs.filter((l) => l.event === "proxy.retry_budget_spent")).toHaveLength(1);
  });

  it("hands a 503 with Retry-After to the client and does not retry that Service at once", async () => {
    const e = await edge("socket");
    const t = tag("retry-after");
    const res = await e.request(host, `/status/503?retry-after=30&tag=${t}`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("30");
    expect((await hits(t)).count).toBe(1);
    // The Service said "later": its next 503 is not retried either.
    const next = tag("retry-after-next");
    expect((await e.request(host, `/status/503?tag=${next}`)).status).toBe(503);
    expect((await hits(next)).count).toBe(1);
    // A connection failure is another matter: still moved on. (Other Services are not held.)
    const other = await edge("socket");
    const o = tag("retry-after-other");
    expect((await other.request(host, `/status/503?tag=${o}`)).status).toBe(503);
    expect((await hits(o)).count).toBe(3);
  });
});
