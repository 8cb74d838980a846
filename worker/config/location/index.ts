// The location copy: each cluster's stored value shared by all isolates of one
// Cloudflare location through the Cache API (per location, free), so that KV is
// read once per location per refresh interval instead of once per isolate.
// On *.workers.dev the Cache API does nothing (match finds nothing, put keeps
// nothing): every isolate then reads KV itself, as without this module.
import { decodeBody, decodeHead, DEFAULT_INSTANCE, encodeEntry, MAX_ENTRY_BYTES, type EntryHead, type StoredValue } from "./entry.ts";

export { DEFAULT_INSTANCE, headTag, type EntryHead, type StoredValue } from "./entry.ts";

/** What the copy needs of a Cache (tests pass one that counts, drops or corrupts). */
export type LocationCache = Pick<Cache, "match" | "put">;

/**
 * The key under which a cluster's copy lives; a host no request can carry, so no app path collides.
 * The deployment's identity is in it: caches.default is shared by every worker on the zone.
 */
export function entryKey(cluster: string, instance: string = DEFAULT_INSTANCE): string {
  const i = instance === DEFAULT_INSTANCE ? "" : `instances/${encodeURIComponent(instance)}/`;
  return `https://edgelb-location-copy.invalid/v1/${i}clusters/${encodeURIComponent(cluster)}`;
}

export type LocationRead =
  | { kind: "none" }
  /** The Cache itself failed: like no copy, but said once. */
  | { kind: "unavailable"; reason: string }
  /** An entry was there but is unusable: read KV instead. */
  | { kind: "ignored"; reason: string }
  /** Valid head, body not read: the caller already has this value (or a newer one). */
  | { kind: "head"; head: EntryHead }
  | { kind: "value"; head: EntryHead; value: StoredValue };

/** Reads a body of at most `max` bytes (a lying or missing Content-Length cannot make it read more). */
async function readAtMost(body: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array | undefined> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export class LocationCopy {
  /** `instance`: this deployment's identity (see DEFAULT_INSTANCE); another deployment's entries are never read. */
  constructor(
    private readonly cache: LocationCache,
    private readonly instance: string = DEFAULT_INSTANCE,
  ) {}

  /**
   * The location's copy of `cluster`. `wants(head)` decides from the headers
   * whether the body is worth reading (it is not when the isolate holds that
   * value already): then only the head is returned.
   */
  async read(cluster: string, now: number, wants: (head: EntryHead) => boolean): Promise<LocationRead> {
    let res: Response | undefined;
    try {
      res = await this.cache.match(entryKey(cluster, this.instance));
    } catch (err) {
      return { kind: "unavailable", reason: `cache read failed: ${(err as Error).message}` };
    }
    if (!res) return { kind: "none" };
    const head = await decodeHead(res.headers, cluster, now, this.instance);
    if (!head.ok || res.status !== 200 || !wants(head.value)) {
      await res.body?.cancel().catch(() => {});
      if (!head.ok) return { kind: "ignored", reason: head.reason };
      if (res.status !== 200) return { kind: "ignored", reason: `status ${res.status}` };
      return { kind: "head", head: head.value };
    }
    const bytes = res.body ? await readAtMost(res.body, Math.min(head.value.bytes, MAX_ENTRY_BYTES)).catch(() => undefined) : new Uint8Array(0);
    if (!bytes) return { kind: "ignored", reason: "body longer than its head says, or unreadable" };
    const body = await decodeBody(head.value, bytes);
    if (!body.ok) return { kind: "ignored", reason: body.reason };
    return { kind: "value", head: head.value, value: body.value };
  }

  /** Stores `value` (read from KV, or pushed, at `readAt`) as the location's copy; returns its head. */
  async write(cluster: string, value: StoredValue, readAt: number): Promise<EntryHead> {
    const e = await encodeEntry(cluster, value, readAt, this.instance);
    await this.cache.put(entryKey(cluster, this.instance), new Response(e.body, { status: 200, headers: e.headers }));
    return e.head;
  }
}
