// What a cluster's KV key can hold besides a snapshot, and how two stored
// values are ordered. Pure.
//
// Deleting a cluster through the control API leaves a tombstone under its key
// instead of nothing: it carries the next generation (so a stale read of the
// deleted snapshot is recognised as older) and the install epoch that ended.
// Every snapshot the worker stores carries an install epoch in the key's KV
// metadata; a push onto a tombstone (or an empty key) starts a new, larger
// epoch, so a reinstalled cluster whose agent starts again at generation 1 is
// newer than anything of the deleted install, in every isolate, also after
// restarts. Values written without metadata (the agent's KV sink) have no
// epoch and are ordered by generation alone, except after a tombstone of an
// install that had one: then they are a new install (config/index.ts).
import * as v from "valibot";
import { ClusterName } from "../snapshot/schema.ts";

export const TOMBSTONE_SCHEMA = "edgelb.dev/tombstone/v1";

const Tombstone = v.object({
  schema: v.literal(TOMBSTONE_SCHEMA),
  cluster: ClusterName,
  /** One more than the deleted snapshot's generation. */
  generation: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Number.MAX_SAFE_INTEGER)),
  deletedAt: v.string(),
  /** The install epoch that the deletion ended. */
  installEpoch: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
});
export type Tombstone = v.InferOutput<typeof Tombstone>;

/** KV metadata stored with a snapshot written by the worker. */
export interface StoredMetadata {
  installEpoch?: number;
  /**
   * The agent's last heartbeat (ms). Written by the push endpoint with the
   * worker's clock; by a KV-sink agent with its own clock (readers bound it:
   * see heartbeatOf).
   */
  heartbeatAt?: number;
}

/** A heartbeat dated later than this past the reader's clock is refused: that agent's clock is wrong. */
export const MAX_HEARTBEAT_SKEW_MS = 60_000;

/**
 * The heartbeat time in a key's KV metadata, bounded by the reader's clock:
 * never in the future (a little ahead is clock skew and reads as now; far
 * ahead would keep a dead agent fresh forever, so it reads as 0: stale).
 * Undefined when the metadata holds none (values written before heartbeats).
 */
export function heartbeatOf(metadata: unknown, now: number): number | undefined {
  if (typeof metadata !== "object" || metadata === null) return undefined;
  const h = (metadata as { heartbeatAt?: unknown }).heartbeatAt;
  if (typeof h !== "number" || !Number.isSafeInteger(h) || h < 0) return undefined;
  if (h > now + MAX_HEARTBEAT_SKEW_MS) return 0;
  return Math.min(h, now);
}

/** Where a stored value stands: a missing epoch means "not known, compare generations". */
export interface Version {
  epoch: number | undefined;
  generation: number;
}

export function tombstoneText(cluster: string, deletedGeneration: number, installEpoch: number, now: number): string {
  const t: Tombstone = {
    schema: TOMBSTONE_SCHEMA,
    cluster,
    generation: Math.min(deletedGeneration + 1, Number.MAX_SAFE_INTEGER),
    deletedAt: new Date(now).toISOString(),
    installEpoch,
  };
  return JSON.stringify(t);
}

/** The tombstone in a stored text, or undefined when the text is something else. */
export function parseTombstone(text: string): Tombstone | undefined {
  // Cheap test first: snapshots are parsed elsewhere, only tombstones here.
  if (!text.includes(TOMBSTONE_SCHEMA)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const r = v.safeParse(Tombstone, value);
  return r.success ? r.output : undefined;
}

/** The install epoch in a key's KV metadata, if it holds a valid one. */
export function epochOf(metadata: unknown): number | undefined {
  if (typeof metadata !== "object" || metadata === null) return undefined;
  const e = (metadata as { installEpoch?: unknown }).installEpoch;
  return typeof e === "number" && Number.isSafeInteger(e) && e >= 0 ? e : undefined;
}

/**
 * Is `next` older than `current`? Install epochs decide when both are known
 * and differ; otherwise generations do (KV is eventually consistent, so an
 * older value may be read after a newer one).
 */
export function isOlder(next: Version, current: Version): boolean {
  if (next.epoch !== undefined && current.epoch !== undefined && next.epoch !== current.epoch) return next.epoch < current.epoch;
  return next.generation < current.generation;
}

/** A new install's epoch: the clock in ms, and always after the epoch that ended. */
export function nextInstallEpoch(ended: number | undefined, now: number): number {
  return Math.max(Math.floor(now), ended === undefined ? 0 : ended + 1);
}
