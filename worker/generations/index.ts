// The fast path's strongly consistent store (issue 19): one Durable Object
// that holds, per cluster, the newest value the push endpoint accepted (a
// snapshot or a deletion tombstone) with its version. Locations ask it every
// few seconds which versions it holds (one request, all clusters) and fetch a
// value only when it is newer than theirs. KV stays the source for cold
// isolates and the fallback when this store cannot be reached.
//
// SQLite-backed (the free plan's kind): a value is at most 2 MB, so texts are
// stored in chunks of 512 Ki characters written in one transaction with their version.
import { DurableObject } from "cloudflare:workers";
import * as v from "valibot";
import { isOlder } from "../config/stored.ts";
import { decideKvRefresh, ValueVersion, type GenerationsApi, type Versions } from "./api.ts";

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

export class EdgelbGenerations extends DurableObject implements GenerationsApi {
  async versions(): Promise<Versions> {
    const out: Versions = {};
    for (const [key, s] of await this.ctx.storage.list<Stored>({ prefix: "v/" })) {
      out[key.slice(2)] = versionOf(s);
    }
    return out;
  }

  async value(cluster: string): Promise<{ version: ValueVersion; text: string } | null> {
    const s = await this.ctx.storage.get<Stored>(`v/${cluster}`);
    if (!s) return null;
    const keys = Array.from({ length: s.chunks }, (_, i) => `t/${cluster}/${i}`);
    const parts = keys.length ? await this.ctx.storage.get<string>(keys) : new Map<string, string>();
    const text = keys.map((k) => parts.get(k) ?? "").join("");
    return { version: versionOf(s), text };
  }

  /** Stores the value unless the stored one is newer (a push that lost a race must not win here). */
  async publish(cluster: string, version: ValueVersion, text: string): Promise<{ stored: boolean; current: ValueVersion }> {
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
    return { stored: true, current: checked };
  }

  async heartbeat(cluster: string, version: { generation: number; epoch: number | null }, at: number): Promise<{ recorded: boolean }> {
    if (!Number.isSafeInteger(at) || at < 0) return { recorded: false };
    const s = await this.ctx.storage.get<Stored>(`v/${cluster}`);
    if (!s || s.kind !== "snapshot" || s.generation !== version.generation || (s.epoch ?? null) !== (version.epoch ?? null)) return { recorded: false };
    if (s.heartbeatAt !== undefined && at < s.heartbeatAt + HEARTBEAT_MIN_STEP_MS) return { recorded: false };
    await this.ctx.storage.put(`v/${cluster}`, { ...s, heartbeatAt: at } satisfies Stored);
    return { recorded: true };
  }

  async claimKvRefresh(cluster: string, version: { generation: number; epoch: number | null }, at: number, everyMs: number): Promise<{ write: boolean; current: ValueVersion | null }> {
    const s = await this.ctx.storage.get<Stored>(`v/${cluster}`);
    return decideKvRefresh(s && versionOf(s), s?.kvRefreshAt, version, at, everyMs, (kvRefreshAt) => this.ctx.storage.put(`v/${cluster}`, { ...s!, kvRefreshAt } satisfies Stored));
  }
}

