// Synthetic snapshots of a chosen size, valid against the shared schema, for
// the routing-cost rows and the data-plane config. Deterministic (seeded) so
// every run measures the same input.
import { SNAPSHOT_SCHEMA, type SnapshotInput } from "../../worker/snapshot/schema.ts";

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}


export function serviceHostname(i: number): string {
  return `svc-${i}.team-${i % 50}.bench.example.com`;
}

export interface SyntheticOptions {
  nodes: number;
  services: number;
  generation?: number;
  seed?: number;
}

/**
 * N nodes (1 in 20 unhealthy) and M Services: 80% Cluster round-robin,
 * 10% Cluster with client-ip affinity, 10% Local with 1–3 nodes holding
 * endpoints. Each Service has one hostname; every 10th has a second one.
 */
export function syntheticSnapshot(o: SyntheticOptions): SnapshotInput {
  const r = rng(o.seed ?? 42);
  const nodes = Array.from({ length: o.nodes }, (_, i) => ({
    name: `node-${i}`,
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) + 1 > 254 ? 254 : (i & 255) + 1}`,
    healthy: i % 20 !== 7,
    zone: `zone-${i % 3}`,
  }));
  const services = Array.from({ length: o.services }, (_, i) => {
    const kind = i % 10;
    const hostnames = [serviceHostname(i), ...(i % 10 === 3 ? [`alt-${i}.bench.example.org`] : [])];
    const base = {
      namespace: `team-${i % 50}`,
      name: `svc-${i}`,
      hostnames,
      nodePort: 30000 + (i % 2768),
    };
    if (kind === 9) {
      const count = 1 + Math.floor(r() * 3);
      const picked = new Set<number>();
      while (picked.size < Math.min(count, o.nodes)) picked.add(Math.floor(r() * o.nodes));
      return {
        ...base,
        trafficPolicy: "Local" as const,
        endpoints: [...picked].sort((a, b) => a - b).map((n) => ({ node: `node-${n}`, weight: 1 + Math.floor(r() * 3), healthy: true })),
        policy: { algorithm: "weighted" as const },
      };
    }
    if (kind === 5) return { ...base, policy: { affinity: "client-ip" as const } };
    return { ...base, policy: { algorithm: "round-robin" as const } };
  });
  return {
    schema: SNAPSHOT_SCHEMA,
    cluster: "default",
    generation: o.generation ?? 1,
    publishedAt: new Date(Date.UTC(2026, 0, 1)).toISOString(),
    nodes,
    services,
  };
}
