// What the config store's tests (index, location copy, fast path) share: unique
// cluster names per test (they share one workerd's KV, Cache and Durable
// Object) and a minimal valid snapshot. Test-only: nothing in the worker imports it.
import { SNAPSHOT_SCHEMA, type SnapshotInput } from "../snapshot/schema.ts";

let seq = 0;

/** A name no other test of this run uses. */
export const unique = (prefix: string): string => `${prefix}-${Date.now().toString(36)}-${seq++}`;

/** One node, one Service serving `host`. */
export function snap(cluster: string, generation: number, host: string): SnapshotInput {
  return {
    schema: SNAPSHOT_SCHEMA,
    cluster,
    generation,
    publishedAt: "2026-01-01T00:00:00Z",
    nodes: [{ name: "n1", address: "192.0.2.1", healthy: true }],
    services: [{ namespace: "default", name: "web", hostnames: [host], nodePort: 30080 }],
  };
}
