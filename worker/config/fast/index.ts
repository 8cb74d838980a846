// The fast path's client (issue 19): asks the generations Durable Object
// (worker/generations) which versions it holds, at most once per interval per
// location — the answer is shared by the location's isolates through the Cache
// API — and fetches a cluster's value only when it is newer than what the
// isolate has. Every answer is validated; a failure is logged once and the
// isolate goes on with KV and the location copy.
import * as v from "valibot";
import type { Logger } from "../../log/index.ts";
import { parseSnapshot } from "../../snapshot/schema.ts";
import type { GenerationsApi, ValueVersion, Versions as VersionsT } from "../../generations/api.ts";
import { ValueVersion as ValueVersionSchema, Versions } from "../../generations/api.ts";
import { DEFAULT_INSTANCE, type LocationCache, type StoredValue } from "../location/index.ts";
import { parseTombstone } from "../stored.ts";

/** The location's shared answer; per deployment, as caches.default is shared by every worker on the zone. */
export function sharedKey(instance: string | undefined): string {
  return instance === undefined || instance === DEFAULT_INSTANCE
    ? "https://edgelb-location-copy.invalid/v1/generations"
    : `https://edgelb-location-copy.invalid/v1/instances/${encodeURIComponent(instance)}/generations`;
}
const SHARED_FORMAT = "edgelb.dev/location-generations/v1";
/** A versions answer is a few dozen bytes per cluster: anything far bigger is not one. */
const MAX_SHARED_BYTES = 1024 * 1024;

const SharedAnswer = v.object({ format: v.literal(SHARED_FORMAT), instance: v.optional(v.string()), at: v.pipe(v.number(), v.integer(), v.minValue(0)), versions: Versions });
const ValueAnswer = v.nullable(v.object({ version: ValueVersionSchema, text: v.string() }));

export interface FastPathOptions {
  /** The generations object (a new stub per call is cheap). */
  stub: () => GenerationsApi;
  /** The location's cache: shares each answer among its isolates; none: every isolate asks. */
  cache?: LocationCache;
  /** At most one versions request per location per this many ms. */
  intervalMs: number;
  now: () => number;
  log: Logger;
  /** This deployment's identity (see DEFAULT_INSTANCE): another deployment's shared answer is never used. */
  instance?: string;
  /** Longest wait for one call (default CALL_TIMEOUT_MS): a hung object must not hold the refresh. */
  timeoutMs?: number;
}

export const CALL_TIMEOUT_MS = 3_000;

export function versionKey(x: ValueVersion): string {
  return `${x.kind}:${x.epoch ?? "-"}:${x.generation}`;
}

export class FastPath {
  private memo: { at: number; versions: VersionsT | undefined } | undefined;
  private problem: string | undefined;
  /** Requests this isolate made to the object (for tests and the status page). */
  requests = 0;

  constructor(private readonly o: FastPathOptions) {}

  /** The object's versions, no older than the interval; undefined when it cannot be reached. */
  async versions(): Promise<VersionsT | undefined> {
    const now = this.o.now();
    if (this.memo && now - this.memo.at < this.o.intervalMs) return this.memo.versions;
    const shared = await this.readShared(now);
    if (shared && now - shared.at < this.o.intervalMs) {
      this.memo = shared;
      return shared.versions;
    }
    try {
      this.requests++;
      const versions = v.parse(Versions, await this.bounded(() => this.o.stub().versions()));
      this.memo = { at: now, versions };
      this.ok();
      await this.writeShared(now, versions);
      return versions;
    } catch (err) {
      // Not asked again before the interval: an unreachable object must not cost a request per refresh.
      this.memo = { at: now, versions: undefined };
      this.fail("versions", err);
      return undefined;
    }
  }

  /** The object's value for `cluster`, validated; undefined when unreachable or not valid. */
  async value(cluster: string): Promise<StoredValue | undefined> {
    let answer: v.InferOutput<typeof ValueAnswer>;
    try {
      this.requests++;
      answer = v.parse(ValueAnswer, await this.bounded(() => this.o.stub().value(cluster)));
      this.ok();
    } catch (err) {
      this.fail("value", err);
      return undefined;
    }
    if (!answer) return undefined;
    const { version, text } = answer;
    if (version.kind === "tombstone") {
      const t = parseTombstone(text);
      if (!t || t.cluster !== cluster || t.generation !== version.generation || t.installEpoch !== version.epoch) return this.invalid(cluster, "tombstone does not match its version");
      return { kind: "tombstone", text, tombstone: t };
    }
    const parsed = parseSnapshot(text);
    if (!parsed.ok) return this.invalid(cluster, parsed.error);
    if (parsed.snapshot.cluster !== cluster || parsed.snapshot.generation !== version.generation) return this.invalid(cluster, "snapshot does not match its version");
    return { kind: "snapshot", text, snapshot: parsed.snapshot, epoch: version.epoch ?? undefined };
  }

  /** Hands a value the push endpoint accepted to the object; a failure is logged (KV has it anyway). */
  async publish(cluster: string, value: StoredValue): Promise<void> {
    if (value.kind === "missing") return;
    const version: ValueVersion =
      value.kind === "snapshot"
        ? { kind: "snapshot", generation: value.snapshot.generation, epoch: value.epoch ?? null, at: this.o.now(), ...(value.heartbeatAt !== undefined ? { heartbeatAt: value.heartbeatAt } : {}) }
        : { kind: "tombstone", generation: value.tombstone.generation, epoch: value.tombstone.installEpoch, at: this.o.now() };
    try {
      this.requests++;
      await this.bounded(() => this.o.stub().publish(cluster, version, value.text));
      this.ok();
      // This isolate knows the new version now: it need not ask before the next interval.
      if (this.memo?.versions) this.memo.versions[cluster] = version;
    } catch (err) {
      this.fail("publish", err);
    }
  }

  /** Hands the agent's heartbeat (the worker's clock) for the stored snapshot to the object; a failure is logged. */
  async heartbeat(cluster: string, version: { generation: number; epoch: number | null }, at: number): Promise<void> {
    try {
      this.requests++;
      await this.bounded(() => this.o.stub().heartbeat(cluster, version, at));
      this.ok();
      const known = this.memo?.versions?.[cluster];
      if (known && known.kind === "snapshot" && known.generation === version.generation && known.epoch === version.epoch) known.heartbeatAt = Math.max(known.heartbeatAt ?? 0, at);
    } catch (err) {
      this.fail("heartbeat", err);
    }
  }

  private async bounded<T>(call: () => Promise<T>): Promise<T> {
    const ms = this.o.timeoutMs ?? CALL_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        call(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private ok(): void {
    if (this.problem) this.o.log("info", "config.fast_recovered", { after: this.problem });
    this.problem = undefined;
  }

  private fail(call: string, err: unknown): void {
    const problem = `${call}: ${(err as Error)?.message ?? String(err)}`.slice(0, 300);
    if (this.problem !== problem) this.o.log("warn", "config.fast_unavailable", { error: problem, fallback: "KV and the location copy" });
    this.problem = problem;
  }

  private invalid(cluster: string, error: string): undefined {
    this.o.log("error", "config.fast_rejected", { cluster, error: error.slice(0, 300) });
    return undefined;
  }

  private async readShared(now: number): Promise<{ at: number; versions: VersionsT } | undefined> {
    if (!this.o.cache) return undefined;
    try {
      const res = await this.o.cache.match(sharedKey(this.o.instance));
      if (!res) return undefined;
      const length = Number(res.headers.get("content-length") ?? NaN);
      if (!(length <= MAX_SHARED_BYTES)) {
        await res.body?.cancel();
        return undefined;
      }
      const r = v.safeParse(SharedAnswer, JSON.parse(await res.text()));
      if (!r.success || r.output.at > now + 60_000) return undefined;
      if ((r.output.instance ?? DEFAULT_INSTANCE) !== (this.o.instance ?? DEFAULT_INSTANCE)) return undefined;
      return { at: r.output.at, versions: r.output.versions };
    } catch {
      return undefined; // unreadable or not ours: ask the object
    }
  }

  private async writeShared(at: number, versions: VersionsT): Promise<void> {
    if (!this.o.cache) return;
    const body = JSON.stringify({ format: SHARED_FORMAT, instance: this.o.instance ?? DEFAULT_INSTANCE, at, versions });
    await this.o.cache
      .put(sharedKey(this.o.instance), new Response(body, { headers: { "content-type": "application/json", "cache-control": "public, max-age=3600" } }))
      .catch(() => {});
  }
}
