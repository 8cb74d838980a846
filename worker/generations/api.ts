// What crosses between the worker and the generations Durable Object: the
// object's name, the versions it answers with, and its methods. Pure (the
// class itself is in ./index.ts, which needs the Workers runtime).
import * as v from "valibot";

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

/** What the worker calls (RPC: one billed request per call). */
export interface GenerationsApi {
  versions(): Promise<Versions>;
  value(cluster: string): Promise<{ version: ValueVersion; text: string } | null>;
  publish(cluster: string, version: ValueVersion, text: string): Promise<{ stored: boolean; current: ValueVersion }>;
  /** Records a heartbeat for the stored snapshot of this version (nothing when another version is stored). */
  heartbeat(cluster: string, version: { generation: number; epoch: number | null }, at: number): Promise<{ recorded: boolean }>;
}

