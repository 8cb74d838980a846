// A per-isolate memo of what the edge decided for a raw Host field value, so
// the common request (a hostname it has routed before) costs one Map lookup
// instead of normalizing, the control-host checks and the route, gateway and
// steering lookups.
//
// Safe by construction:
// - Valid for one set of sources only (the route index, the gateway index, the
//   steering setting: each replaced, never mutated, when it changes): a request
//   that sees any of them changed finds the memo empty, so a push that adds,
//   removes or moves a hostname is served right on the very next request.
// - Bounded: at most `limit` entries, cleared when full; keys longer than a
//   hostname with a port can be are never kept. A client sending endless new
//   Host values costs memory of at most `limit` short keys and the cache's
//   owner a recompute per request, never more.

/** A DNS name is at most 253 characters; with a port (":65535") and a trailing dot, 260. */
export const MAX_HOST_KEY = 260;
export const DEFAULT_LIMIT = 1024;

export class HostCache<V> {
  private readonly entries = new Map<string, V>();
  /** The last entry found: most isolates see one hostname after another, and comparing strings costs less than hashing a new one. */
  private lastKey: string | undefined;
  private lastValue: V | undefined;
  private a: unknown;
  private b: unknown;
  private c: unknown;

  constructor(private readonly limit: number = DEFAULT_LIMIT) {}

  /** The value kept for `raw` while the sources are a, b and c (identities); undefined otherwise. */
  get(raw: string, a: unknown, b: unknown, c: unknown): V | undefined {
    if (a !== this.a || b !== this.b || c !== this.c) {
      // Some source changed since the entries were made: none of them holds any more.
      this.clear();
      this.a = a;
      this.b = b;
      this.c = c;
      return undefined;
    }
    if (raw === this.lastKey) return this.lastValue;
    const value = this.entries.get(raw);
    if (value !== undefined) {
      this.lastKey = raw;
      this.lastValue = value;
    }
    return value;
  }

  /** Keeps `value` for `raw` under the sources a, b and c (those of the decision it records). */
  set(raw: string, a: unknown, b: unknown, c: unknown, value: V): void {
    if (raw.length > MAX_HOST_KEY) return;
    if (a !== this.a || b !== this.b || c !== this.c) {
      this.clear();
      this.a = a;
      this.b = b;
      this.c = c;
    } else if (this.entries.size >= this.limit) {
      this.clear();
    } else if (raw === this.lastKey) {
      this.lastValue = value;
    }
    this.entries.set(raw, value);
  }

  private clear(): void {
    if (this.entries.size > 0) this.entries.clear();
    this.lastKey = undefined;
    this.lastValue = undefined;
  }

  get size(): number {
    return this.entries.size;
  }
}
