// What changed between the last pushed snapshot and the desired one, in the
// words a user reads in the push log line: hosts and nodes added or removed.
import * as v from "valibot";
import {
  Service as ServiceSchema,
  validateSnapshot,
  type Snapshot,
  type SnapshotNode,
  type SnapshotService,
} from "../../worker/snapshot/schema.ts";
import type { SnapshotBody } from "./desired.ts";

export interface SnapshotDiff {
  hostsAdded: string[];
  hostsRemoved: string[];
  /** Hostnames whose Service entry changed (port, policy, endpoints, …). */
  hostsChanged: string[];
  nodesAdded: string[];
  nodesRemoved: string[];
  nodesHealthy: string[];
  nodesUnhealthy: string[];
  /** Address or zone changed. */
  nodesChanged: string[];
  servicesAdded: string[];
  servicesRemoved: string[];
  servicesChanged: string[];
}

const EPOCH = "1970-01-01T00:00:00.000Z";

/**
 * The content that matters, with schema defaults applied, as canonical JSON:
 * two snapshots that differ only in generation or publishedAt (or in spelling
 * out a default) compare equal.
 */
export function contentKey(s: SnapshotBody | Snapshot): string {
  const parsed = validateSnapshot({ ...s, generation: 1, publishedAt: EPOCH });
  const value = parsed.ok ? parsed.snapshot : s;
  // The cluster's identity is stamped by the sink on write: who wrote it, not what the edge serves.
  const { generation: _g, publishedAt: _p, clusterId: _c, ...rest } = value as Snapshot;
  return canonicalJSON(rest);
}

export function canonicalJSON(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)));
    }
    return v;
  });
}

function sorted(set: Iterable<string>): string[] {
  return [...set].sort();
}

export function diffSnapshots(before: SnapshotBody | Snapshot | null | undefined, after: SnapshotBody | Snapshot): SnapshotDiff {
  const oldNodes = new Map<string, SnapshotNode>((before?.nodes ?? []).map((n) => [n.name, n as SnapshotNode]));
  const newNodes = new Map<string, SnapshotNode>(after.nodes.map((n) => [n.name, n as SnapshotNode]));
  const d: SnapshotDiff = {
    hostsAdded: [], hostsRemoved: [], hostsChanged: [],
    nodesAdded: [], nodesRemoved: [], nodesHealthy: [], nodesUnhealthy: [], nodesChanged: [],
    servicesAdded: [], servicesRemoved: [], servicesChanged: [],
  };
  for (const [name, n] of newNodes) {
    const o = oldNodes.get(name);
    if (!o) d.nodesAdded.push(name);
    else {
      if (o.healthy !== n.healthy) (n.healthy ? d.nodesHealthy : d.nodesUnhealthy).push(name);
      if (o.address !== n.address || (o.zone ?? "") !== (n.zone ?? "")) d.nodesChanged.push(name);
    }
  }
  for (const name of oldNodes.keys()) if (!newNodes.has(name)) d.nodesRemoved.push(name);

  const svcKey = (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`;
  const oldSvcs = new Map((before?.services ?? []).map((s) => [svcKey(s), s as SnapshotService]));
  const newSvcs = new Map(after.services.map((s) => [svcKey(s), s as SnapshotService]));
  const hostOwner = (m: Map<string, SnapshotService>) => {
    const out = new Map<string, string>();
    for (const [id, s] of m) for (const h of s.hostnames) out.set(h, id);
    return out;
  };
  const oldHosts = hostOwner(oldSvcs);
  const newHosts = hostOwner(newSvcs);
  const changedSvcs = new Set<string>();
  for (const [id, s] of newSvcs) {
    const o = oldSvcs.get(id);
    if (!o) d.servicesAdded.push(id);
    else if (canonicalJSON(normalizeService(o)) !== canonicalJSON(normalizeService(s))) {
      d.servicesChanged.push(id);
      changedSvcs.add(id);
    }
  }
  for (const id of oldSvcs.keys()) if (!newSvcs.has(id)) d.servicesRemoved.push(id);
  for (const [h, id] of newHosts) {
    const was = oldHosts.get(h);
    if (!was) d.hostsAdded.push(h);
    else if (was !== id || changedSvcs.has(id)) d.hostsChanged.push(h);
  }
  for (const h of oldHosts.keys()) if (!newHosts.has(h)) d.hostsRemoved.push(h);
  for (const k of Object.keys(d) as (keyof SnapshotDiff)[]) d[k] = sorted(d[k]);
  return d;
}

/** With the schema's defaults applied, so spelling out a default is no change. */
function normalizeService(s: SnapshotService): unknown {
  const parsed = v.safeParse(ServiceSchema, s);
  return parsed.success ? parsed.output : s;
}

export function isEmptyDiff(d: SnapshotDiff): boolean {
  return Object.values(d).every((list) => list.length === 0);
}

/** "hosts +a.example.com -b.example.com; nodes -node-c" — for humans. */
export function summarizeDiff(d: SnapshotDiff): string {
  const parts: string[] = [];
  const fmt = (label: string, pairs: [string, string[]][]) => {
    const items = pairs.flatMap(([sign, list]) => list.map((x) => `${sign}${x}`));
    if (items.length > 0) parts.push(`${label} ${items.join(" ")}`);
  };
  fmt("hosts", [["+", d.hostsAdded], ["-", d.hostsRemoved], ["~", d.hostsChanged]]);
  fmt("nodes", [["+", d.nodesAdded], ["-", d.nodesRemoved], ["~", d.nodesChanged]]);
  fmt("healthy", [["+", d.nodesHealthy], ["-", d.nodesUnhealthy]]);
  return parts.length > 0 ? parts.join("; ") : "no change";
}
