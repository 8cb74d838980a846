// The fast path's strongly consistent store (issue 19): one Durable Object
// per deployment (for all clusters) that holds, per cluster, the newest value
// the push endpoint accepted (a snapshot or a deletion tombstone) with its
// version. Each location keeps one check held here (watch, a long poll): it
// is answered the moment a publish stores a version the location does not
// know, or after the hold time, with the changed values in the answer. KV
// stays the source for cold isolates and the fallback when this store cannot
// be reached.
//
// The held checks are resolvers in memory, nothing else: no timers between
// checks, no alarms, no sockets. While a check is held the object is busy and
// bills duration (it cannot hibernate); one object held all day is 86,400 s ×
// 128 MB = 11,059 GB-s, inside the free plan's 13,000 GB-s/day. One object per
// cluster would double that per cluster: keep GENERATIONS_OBJECT the only name.
//
// SQLite-backed (the free plan's kind): a value is at most 2 MB, so texts are
// stored in chunks of 512 Ki characters written in one transaction with their version.
import { DurableObject } from "cloudflare:workers";
import * as v from "valibot";
import { isOlder } from "../config/stored.ts";
import { readSettings, type Env } from "../env/index.ts";
import { createLogger } from "../log/index.ts";
import { DailyBudget } from "./budget.ts";
import { changedAgainst, decideKvRefresh, Known, MAX_HELD, MAX_HOLD_MS, MAX_INLINE_CHARS, ValueVersion, type CheckCause, type Versions, type WatchableGenerationsApi, type WatchAnswer } from "./api.ts";

export { GENERATIONS_OBJECT, ValueVersion, Versions, type GenerationsApi } from "./api.ts";

// Characters, not bytes: at most 3 UTF-8 bytes each, so a chunk stays under the 2 MB value limit.
const CHUNK = 512 * 1024;

interface Stored extends ValueVersion {
  chunks: number;
  bytes: number;
  /** When an isolate was last allowed to rewrite this snapshot's KV value for a heartbeat (claimKvRefresh). */
  kvRefreshAt?: number;
}

const versionOf = (s: Stored): ValueVersion => ({
  kind: s.kind,
  generation: s.generation,
  epoch: s.epoch,
  ...(s.at !== undefined ? { at: s.at } : {}),
  ...(s.heartbeatAt !== undefined ? { heartbeatAt: s.heartbeatAt } : {}),
});

/** A heartbeat closer than this to the stored one is not written (a flapping caller cannot turn requests into storage writes). */
export const HEARTBEAT_MIN_STEP_MS = 5_000;

const asVersion = (x: ValueVersion) => ({ epoch: x.epoch ?? undefined, generation: x.generation });

export class EdgelbGenerations extends DurableObject implements WatchableGenerationsApi {
  /** Held checks: each is woken by the next publish, or by its own hold timer. */
  private readonly held = new Set<() => void>();
  /** The requests it serves per UTC day (EDGELB_FAST_BUDGET): past it, checks back off; nothing else is refused. */
  private readonly budget: DailyBudget;

  constructor(ctx: DurableObjectState, env: Partial<Env>) {
    super(ctx, env);
    this.budget = new DailyBudget({ budget: readSettings(env).fastBudget, storage: ctx.storage, now: Date.now, random: Math.random, log: createLogger() });
  }

  async watch(known: Known | null, holdMs: number, cause?: CheckCause): Promise<WatchAnswer> {
    const retryAfterMs = await this.budget.spend();
    // Past half the day's budget a check for an unknown hostname (anyone can send those) is answered
    // at once and tells the location to start no more of them until then.
    const unknownHostRetryAfterMs = this.budget.unknownHostRetry();
    const atOnce = retryAfterMs !== undefined || (cause === "unknown-host" && unknownHostRetryAfterMs !== undefined);
    const k = known === null ? null : v.parse(Known, known);
    const hold = Number.isFinite(holdMs) ? Math.max(0, Math.min(MAX_HOLD_MS, Math.floor(holdMs))) : 0;
    let versions = await this.readVersions();
    let changed = changedAgainst(versions, k);
    let held = false;
    // Past the budget (or half of it, for an unknown hostname): answered at once (what changed still rides along), with the back-off.
    if (!atOnce && k !== null && changed.length === 0 && hold > 0 && this.held.size < MAX_HELD) {
      held = true;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.held.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, hold);
        this.held.add(wake);
      });
      versions = await this.readVersions();
      changed = changedAgainst(versions, k);
    }
    // The changed values ride along (no second request, no second round trip) while they are small.
    const values: WatchAnswer["values"] = {};
    let chars = 0;
    for (const cluster of changed) {
      const value = await this.readValue(cluster);
      if (!value || chars + value.text.length > MAX_INLINE_CHARS) continue;
      chars += value.text.length;
      values[cluster] = value;
    }
    return { versions, values, held, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}), ...(unknownHostRetryAfterMs !== undefined ? { unknownHostRetryAfterMs } : {}) };
  }

  /** How many checks it holds now (for the status of the fast path and for tests). */
  heldChecks(): number {
    return this.held.size;
  }

  /** Answers every held check at once (each re-reads the versions: storage reads here are in memory). */
  private wakeAll(): void {
    for (const wake of [...this.held]) wake();
  }

  /** The day's requests so far (for tests and the status of the fast path; not counted). */
  requestsToday(): Promise<number> {
    return this.budget.count();
  }

  async versions(): Promise<Versions> {
    await this.budget.spend();
    return this.readVersions();
  }

  private async readVersions(): Promise<Versions> {
    const out: Versions = {};
    for (const [key, s] of await this.ctx.storage.list<Stored>({ prefix: "v/" })) {
      out[key.slice(2)] = versionOf(s);
    }
    return out;
  }

  async value(cluster: string): Promise<{ version: ValueVersion; text: string } | null> {
    await this.budget.spend();
    return this.readValue(cluster);
  }

  private async readValue(cluster: string): Promise<{ version: ValueVersion; text: string } | null> {
    const s = await this.ctx.storage.get<Stored>(`v/${cluster}`);
    if (!s) return null;
    const keys = Array.from({ length: s.chunks }, (_, i) => `t/${cluster}/${i}`);
    const parts = keys.length ? await this.ctx.storage.get<string>(keys) : new Map<string, string>();
    const text = keys.map((k) => parts.get(k) ?? "").join("");
    return { version: versionOf(s), text };
  }

  /** Stores the value unless the stored one is newer (a push that lost a race must not win here). */
  async publish(cluster: string, version: ValueVersion, text: string): Promise<{ stored: boolean; current: ValueVersion }> {
    await this.budget.spend(); // counted, never refused
    const checked = v.parse(ValueVersion, version);
    const old = await this.ctx.storage.get<Stored>(`v/${cluster}`);
    if (old && isOlder(asVersion(checked), asVersion(old))) return { stored: false, current: { kind: old.kind, generation: old.generation, epoch: old.epoch } };
    const entries: Record<string, unknown> = {};
    const chunks = Math.ceil(text.length / CHUNK);
    for (let i = 0; i < chunks; i++) entries[`t/${cluster}/${i}`] = text.slice(i * CHUNK, (i + 1) * CHUNK);
    entries[`v/${cluster}`] = { ...checked, chunks, bytes: text.length } satisfies Stored;
    const stale = old ? Array.from({ length: Math.max(0, old.chunks - chunks) }, (_, i) => `t/${cluster}/${chunks + i}`) : [];
    await this.ctx.storage.transaction(async (tx) => {
      await tx.put(entries);
      if (stale.length) await tx.delete(stale);
    });
    this.wakeAll();
    return { stored: true, current: checked };
  }

  async heartbeat(cluster: string, version: { generation: number; epoch: number | null }, at: number): Promise<{ recorded: boolean }> {
    await this.budget.spend();
    if (!Number.isSafeInteger(at) || at < 0) return { recorded: false };
    const s = await this.ctx.storage.get<Stored>(`v/${cluster}`);
    if (!s || s.kind !== "snapshot" || s.generation !== version.generation || (s.epoch ?? null) !== (version.epoch ?? null)) return { recorded: false };
    if (s.heartbeatAt !== undefined && at < s.heartbeatAt + HEARTBEAT_MIN_STEP_MS) return { recorded: false };
    await this.ctx.storage.put(`v/${cluster}`, { ...s, heartbeatAt: at } satisfies Stored);
    return { recorded: true };
  }

  async claimKvRefresh(cluster: string, version: { generation: number; epoch: number | null }, at: number, everyMs: number): Promise<{ write: boolean; current: ValueVersion | null }> {
    await this.budget.spend();
    const s = await this.ctx.storage.get<Stored>(`v/${cluster}`);
    return decideKvRefresh(s && versionOf(s), s?.kvRefreshAt, version, at, everyMs, (kvRefreshAt) => this.ctx.storage.put(`v/${cluster}`, { ...s!, kvRefreshAt } satisfies Stored));
  }
}

