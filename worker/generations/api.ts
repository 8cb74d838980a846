// What crosses between the worker and the generations Durable Object: the
// object's name, the versions it answers with, and its methods. Pure (the
// class itself is in ./index.ts, which needs the Workers runtime).
import * as v from "valibot";
import { isOlder } from "../config/stored.ts";

/** The one object every location talks to. */
export const GENERATIONS_OBJECT = "edgelb-generations";

export const ValueVersion = v.object({
  kind: v.picklist(["snapshot", "tombstone"]),
  generation: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
  epoch: v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER))),
  /**
   * When the publishing isolate accepted it (ms, its clock). Not part of the
   * version's order: it tells a location whose KV read said "missing" after
   * this time that the cluster was removed since (e.g. the agent's KV sink
   * deleted the key), so the object's copy must not bring it back.
   */
  at: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER))),
  /**
   * The agent's last heartbeat for this snapshot (ms, the clock of the isolate
   * that took it: the worker's, never the agent's). Not part of the order either.
   */
  heartbeatAt: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER))),
});
export type ValueVersion = v.InferOutput<typeof ValueVersion>;

export const Versions = v.record(v.string(), ValueVersion);
export type Versions = v.InferOutput<typeof Versions>;

/** A version as one string: equal keys mean the same value (a heartbeat changes no key). */
export function versionKey(x: Pick<ValueVersion, "kind" | "epoch" | "generation">): string {
  return `${x.kind}:${x.epoch ?? "-"}:${x.generation}`;
}

/**
 * The longest the object holds a check (ms). A check is started from a request's waitUntil, which
 * the runtime lets run up to 30 s after the response: 25 s leaves room for the round trip and for
 * fetching and installing the value the answer names.
 */
export const MAX_HOLD_MS = 25_000;
/** Held checks at once: far above one per location; beyond it a check is answered at once (memory stays bounded). */
export const MAX_HELD = 1_000;
/** The longest back-off the object asks of a location once its daily budget is spent (see budget.ts). */
export const MAX_RETRY_AFTER_MS = 3_600_000;
/** Values carried in a check's answer, in characters of text: above it the location asks value() (one more request). */
export const MAX_INLINE_CHARS = 1024 * 1024;

/** What a location last learned from the object: cluster → versionKey. */
export const Known = v.pipe(v.record(v.pipe(v.string(), v.maxLength(256)), v.pipe(v.string(), v.maxLength(64))), v.check((r) => Object.keys(r).length <= 10_000, "too many clusters"));
export type Known = v.InferOutput<typeof Known>;

/** A check's answer: every cluster's version, and the values that changed against `known` (within MAX_INLINE_CHARS). */
export const WatchAnswer = v.object({
  versions: Versions,
  values: v.record(v.string(), v.object({ version: ValueVersion, text: v.string() })),
  /** True when the object held the check (nothing changed until a push or the hold time). */
  held: v.boolean(),
  /**
   * The object's daily budget is spent (worker/generations/budget.ts): answered at once, and the
   * location starts no check before this many ms. Pushes are never refused by the budget.
   */
  retryAfterMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_RETRY_AFTER_MS))),
  /**
   * The object's day is past half its budget: the location starts no check for an unknown
   * hostname before this many ms (a check it started for one was answered at once). Checks for
   * routed traffic go on: 404 noise must not spend what they need.
   */
  unknownHostRetryAfterMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_RETRY_AFTER_MS))),
});
export type WatchAnswer = v.InferOutput<typeof WatchAnswer>;

/**
 * Why a location checks: a request for a routed hostname, or one for a hostname no route serves
 * (which anyone can send: past half the day's budget the object answers those at once).
 */
export type CheckCause = "routed" | "unknown-host";

/** Does the object hold a version the location does not know (null: it knows nothing yet)? */
export function changedAgainst(versions: Versions, known: Known | null): string[] {
  if (known === null) return Object.keys(versions);
  return Object.entries(versions)
    .filter(([cluster, x]) => known[cluster] !== versionKey(x))
    .map(([cluster]) => cluster);
}

/** What the worker calls (RPC: one billed request per call). */
export interface GenerationsApi {
  versions(): Promise<Versions>;
  value(cluster: string): Promise<{ version: ValueVersion; text: string } | null>;
  publish(cluster: string, version: ValueVersion, text: string): Promise<{ stored: boolean; current: ValueVersion }>;
  /** Records a heartbeat for the stored snapshot of this version (nothing when another version is stored). */
  heartbeat(cluster: string, version: { generation: number; epoch: number | null }, at: number): Promise<{ recorded: boolean }>;
  /**
   * May a heartbeat rewrite the cluster's KV value (the snapshot of this version, with a newer
   * heartbeatAt)? Yes unless the object holds a newer value (a push or a deletion the reader's KV
   * copy does not show yet) or another isolate, anywhere, was allowed within everyMs. `current` is
   * the object's version (null: none), to repair KV when it moved on during the write.
   */
  claimKvRefresh(cluster: string, version: { generation: number; epoch: number | null }, at: number, everyMs: number): Promise<{ write: boolean; current: ValueVersion | null }>;
}

/** The fast path's view of the object: the calls above and the long poll. */
export interface WatchableGenerationsApi extends GenerationsApi {
  /**
   * The long poll: answers at once when the object holds a version `known` does not name (or
   * known is null), else holds the call until a publish stores one or `holdMs` (at most
   * MAX_HOLD_MS) pass. One billed request per call, however long it is held. Polling is a watch
   * with holdMs 0 (answered at once, with the same back-offs). `cause` absent: "routed".
   */
  watch(known: Known | null, holdMs: number, cause?: CheckCause): Promise<WatchAnswer>;
}

/**
 * The object's answer to claimKvRefresh (pure, for tests): no write when it stores a newer value
 * than the heartbeat read (the KV copy the heartbeat saw is behind a push or a deletion), nor when
 * another isolate was allowed within everyMs; an object that does not know the cluster, or only an
 * older value (its publish failed), does not stop the write: the caller re-reads KV before writing.
 */
export async function decideKvRefresh(
  stored: ValueVersion | undefined,
  kvRefreshAt: number | undefined,
  version: { generation: number; epoch: number | null },
  at: number,
  everyMs: number,
  save: (kvRefreshAt: number) => Promise<void>,
): Promise<{ write: boolean; current: ValueVersion | null }> {
  const current = stored ?? null;
  if (!Number.isSafeInteger(at) || at < 0) return { write: false, current };
  if (!stored) return { write: true, current };
  const same = stored.kind === "snapshot" && stored.generation === version.generation && (stored.epoch ?? null) === (version.epoch ?? null);
  if (!same) {
    const read = { epoch: version.epoch ?? undefined, generation: version.generation };
    return { write: isOlder({ epoch: stored.epoch ?? undefined, generation: stored.generation }, read), current };
  }
  // Once per interval for all isolates (a clock far behind the last claim may claim again).
  if (kvRefreshAt !== undefined && at < kvRefreshAt + everyMs && at > kvRefreshAt - everyMs) return { write: false, current };
  await save(at);
  return { write: true, current };
}
