// Balancing policies as a client sees them, against the shared nodes.
import { describe, expect, it } from "vitest";
import { edgeWithService, lab, nodesOf, snapshot, service, type Echo } from "./helpers.ts";

const host = "app.example.com";
const all = nodesOf(lab.nodes);
const names = lab.nodes.map((n) => n.name);

async function nodeOf(res: Response): Promise<string> {
  expect(res.status).toBe(200);
  return ((await res.json()) as Echo).node;
}

function tally(list: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of list) out[n] = (out[n] ?? 0) + 1;
  return out;
}

describe("balancing through the worker", () => {
  it("round-robin spreads requests evenly", async () => {
    const e = await edgeWithService({ hostnames: [host], nodePort: lab.nodePort }, all);
    const seen = [];
    for (let i = 0; i < 9; i++) seen.push(await nodeOf(await e.request(host)));
    expect(tally(seen)).toEqual(Object.fromEntries(names.map((n) => [n, 3])));
  });

  it("random reaches every node", async () => {
    const e = await edgeWithService({ hostnames: [host], nodePort: lab.nodePort, policy: { algorithm: "random" } }, all);
    const seen = new Set<string>();
    for (let i = 0; i < 60 && seen.size < 3; i++) seen.add(await nodeOf(await e.request(host)));
    expect(seen.size).toBe(3);
  });

  it("weighted follows the Local endpoint weights", async () => {
    const [a, b, c] = names as [string, string, string];
    const e = await edgeWithService(
      {
        hostnames: [host],
        nodePort: lab.nodePort,
        trafficPolicy: "Local",
        endpoints: [
          { node: a, weight: 4 },
          { node: b, weight: 1 },
          { node: c, weight: 1 },
        ],
        policy: { algorithm: "weighted" },
      },
      all,
    );
    const seen = [];
    for (let i = 0; i < 12; i++) seen.push(await nodeOf(await e.request(host)));
    expect(tally(seen)).toEqual({ [a]: 8, [b]: 2, [c]: 2 });
  });

  it("least-request keeps new requests off a node that is busy", async () => {
    const two = all.slice(0, 2);
    const e = await edgeWithService({ hostnames: [host], nodePort: lab.nodePort, policy: { algorithm: "least-request" } }, two);
    const slow = e.request(host, "/delay?ms=700");
    const quick: string[] = [];
    for (let i = 0; i < 6; i++) quick.push(await nodeOf(await e.request(host)));
    const busy = await nodeOf(await slow);
    expect(new Set(quick).size).toBe(1);
    expect(quick[0]).not.toBe(busy);
    // Every finished request was counted out again.
    const nodes = e.status().clusters[0]!.nodes;
    expect(nodes).toHaveLength(2);
    expect(nodes.flatMap((n) => n.origins).filter((o) => o.inFlight !== 0)).toEqual([]);
  });

  it("client-ip affinity keeps each client on one node and spreads clients", async () => {
    const e = await edgeWithService({ hostnames: [host], nodePort: lab.nodePort, policy: { affinity: "client-ip" } }, all);
    const byClient = new Map<string, Set<string>>();
    for (let i = 0; i < 30; i++) {
      const ip = `203.0.113.${i % 10}`;
      const node = await nodeOf(await e.request(host, "/", { headers: { "cf-connecting-ip": ip } }));
      byClient.set(ip, (byClient.get(ip) ?? new Set()).add(node));
    }
    for (const nodes of byClient.values()) expect(nodes.size).toBe(1);
    expect(new Set([...byClient.values()].flatMap((s) => [...s])).size).toBeGreaterThan(1);
  });

  it("cookie affinity pins a client to its node and falls back cleanly when the node is gone", async () => {
    const e = await edgeWithService({ hostnames: [host], nodePort: lab.nodePort, policy: { affinity: "cookie", cookieName: "sticky" } }, all);
    const first = await e.request(host);
    const setCookie = first.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/^sticky=[0-9a-z]+; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
    const pinned = await nodeOf(first);
    const cookie = setCookie.split(";")[0]!;
    for (let i = 0; i < 6; i++) {
      const res = await e.request(host, "/", { headers: { cookie: `other=1; ${cookie}` } });
      expect(res.headers.get("set-cookie")).toBeNull();
      expect(await nodeOf(res)).toBe(pinned);
    }
    // An unknown value is not an error: the client is balanced and gets a new cookie.
    const stranger = await e.request(host, "/", { headers: { cookie: "sticky=nonsense" } });
    expect(stranger.headers.get("set-cookie")).toMatch(/^sticky=/);
    expect(names).toContain(await nodeOf(stranger));

    // The pinned node leaves the cluster: the client moves and is re-pinned.
    await e.seed(snapshot(e.cluster, all.filter((n) => n.name !== pinned), [service({ hostnames: [host], nodePort: lab.nodePort, policy: { affinity: "cookie", cookieName: "sticky" } })]));
    const moved = await e.request(host, "/", { headers: { cookie } });
    const newCookie = moved.headers.get("set-cookie")!.split(";")[0]!;
    const now = await nodeOf(moved);
    expect(now).not.toBe(pinned);
    expect(newCookie).not.toBe(cookie);
    for (let i = 0; i < 3; i++) expect(await nodeOf(await e.request(host, "/", { headers: { cookie: newCookie } }))).toBe(now);
  });
});
