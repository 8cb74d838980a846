import { describe, expect, it } from "vitest";
import type { RouteOrigin } from "../config/routes.ts";
import { cookieValue, newBalancerState, pick, readCookie, rendezvous, type PickContext } from "./index.ts";

function origins(n: number, weights: number[] = []): RouteOrigin[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `c/node-${i}:30080`,
    node: `node-${i}`,
    address: `10.0.0.${i + 1}`,
    port: 30080,
    scheme: "http" as const,
    cluster: "c",
    service: "default/web",
    weight: weights[i] ?? 1,
    healthy: true,
  }));
}

/** A seeded PRNG (mulberry32) so distributions are reproducible. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function ctx(inFlight: Record<string, number> = {}, random = seeded(7)): PickContext {
  return { state: newBalancerState(), inFlight: (k) => inFlight[k] ?? 0, random };
}

function count(list: (RouteOrigin | undefined)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of list) out[o!.node] = (out[o!.node] ?? 0) + 1;
  return out;
}

describe("round-robin", () => {
  it("cycles through the origins in order", () => {
    const os = origins(3);
    const c = ctx();
    expect(Array.from({ length: 6 }, () => pick("round-robin", os, c)!.node)).toEqual([
      "node-0", "node-1", "node-2", "node-0", "node-1", "node-2",
    ]);
  });
});

describe("random", () => {
  it("spreads picks over every origin", () => {
    const os = origins(4);
    const c = ctx();
    const counts = count(Array.from({ length: 4000 }, () => pick("random", os, c)));
    for (const o of os) expect(counts[o.node]).toBeGreaterThan(850);
  });
});

describe("weighted", () => {
  it("gives each origin its share of picks, interleaved rather than in bursts", () => {
    const os = origins(3, [3, 1, 2]);
    const c = ctx();
    const seq = Array.from({ length: 600 }, () => pick("weighted", os, c));
    expect(count(seq)).toEqual({ "node-0": 300, "node-1": 100, "node-2": 200 });
    // Smooth: the heaviest node never gets more than 2 picks in a row at 3:1:2.
    const names = seq.map((o) => o!.node).join(",");
    expect(names).not.toContain("node-0,node-0,node-0");
  });
});

describe("least-request (power of two choices)", () => {
  it("never picks the busiest origin while others are idle", () => {
    const os = origins(2);
    const c = ctx({ "c/node-0:30080": 10 });
    expect(count(Array.from({ length: 200 }, () => pick("least-request", os, c)))).toEqual({ "node-1": 200 });
  });

  it("steers most traffic away from a busy origin among several", () => {
    const os = origins(4);
    const c = ctx({ "c/node-0:30080": 5 });
    const counts = count(Array.from({ length: 4000 }, () => pick("least-request", os, c)));
    expect(counts["node-0"] ?? 0).toBe(0);
    for (const n of ["node-1", "node-2", "node-3"]) expect(counts[n]).toBeGreaterThan(1100);
  });
});

describe("client-ip consistent hashing", () => {
  const clients = Array.from({ length: 20_000 }, (_, i) => `198.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

  it("spreads clients evenly and keeps each client on one origin", () => {
    const os = origins(5);
    const counts = count(clients.map((ip) => rendezvous(ip, os)));
    for (const o of os) expect(counts[o.node]! / clients.length).toBeGreaterThan(0.17);
    expect(rendezvous("203.0.113.9", os)!.key).toBe(rendezvous("203.0.113.9", [...os].reverse())!.key);
  });

  it("remaps only about 1/N of clients when one of N nodes goes away", () => {
    const os = origins(5);
    const before = new Map(clients.map((ip) => [ip, rendezvous(ip, os)!.node]));
    const gone = "node-2";
    const after = new Map(clients.map((ip) => [ip, rendezvous(ip, os.filter((o) => o.node !== gone))!.node]));
    const moved = clients.filter((ip) => before.get(ip) !== after.get(ip));
    expect(moved.length / clients.length).toBeGreaterThan(0.15);
    expect(moved.length / clients.length).toBeLessThan(0.25);
    // Only the clients of the removed node moved.
    expect(moved.every((ip) => before.get(ip) === gone)).toBe(true);
  });

  it("moves only about 1/(N+1) of clients to a node that joins", () => {
    const os = origins(6);
    const before = new Map(clients.map((ip) => [ip, rendezvous(ip, os.slice(0, 5))!.node]));
    const moved = clients.filter((ip) => rendezvous(ip, os)!.node !== before.get(ip));
    expect(moved.length / clients.length).toBeGreaterThan(0.12);
    expect(moved.length / clients.length).toBeLessThan(0.22);
    expect(moved.every((ip) => rendezvous(ip, os)!.node === "node-5")).toBe(true);
  });
});

describe("affinity cookie", () => {
  it("has a stable opaque value per origin that does not reveal the node", () => {
    const os = origins(3);
    const values = os.map(cookieValue);
    expect(new Set(values).size).toBe(3);
    expect(cookieValue(os[1]!)).toBe(values[1]);
    for (const v of values) expect(v).toMatch(/^[0-9a-z]+$/);
    expect(values.join()).not.toContain("node");
  });

  it("is read from a Cookie header among others", () => {
    expect(readCookie("a=1; edgelb_affinity=xyz; b=2", "edgelb_affinity")).toBe("xyz");
    expect(readCookie("a=1", "edgelb_affinity")).toBeUndefined();
    expect(readCookie(null, "edgelb_affinity")).toBeUndefined();
  });
});
