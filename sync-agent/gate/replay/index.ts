// The gate's memory of nonces it has accepted, so a signed request captured on
// the wire cannot be sent again while its timestamp is still in the window.
//
// Bounded: at most `capacity` nonces. When full, the oldest is forgotten and
// its timestamp becomes a floor: from then on, a request signed at or before
// that second is refused too (it could be the forgotten one). Under a flood the
// window shrinks; a replay never gets through.

export interface ReplayCacheOptions {
  capacity: number;
  /** Seconds a timestamp stays acceptable either side of now (the skew window). */
  windowS: number;
}

export class ReplayCache {
  /** The nonces remembered. Only looked up by key, never iterated (see #order). */
  readonly #seen = new Set<string>();
  /**
   * The same nonces and their timestamps (seconds) in insertion order (close to timestamp order), from
   * #head on: the oldest is found and forgotten in O(1). Not the Map's own iteration order: V8 leaves a
   * deleted Map entry as a hole until the next rehash, so walking a Map from its front to forget its
   * oldest entries skipped every hole left by earlier ones, tens of thousands of instructions per request
   * at a few thousand requests a second (gt9's callgrind profile: the gate's most expensive function).
   */
  #nonces: string[] = [];
  #stamps: number[] = [];
  #head = 0;
  readonly #capacity: number;
  readonly #windowS: number;
  #floor = -1;

  constructor(opts: ReplayCacheOptions) {
    if (!Number.isInteger(opts.capacity) || opts.capacity < 1) throw new Error("replay cache capacity must be a positive integer");
    this.#capacity = opts.capacity;
    this.#windowS = opts.windowS;
  }

  get size(): number {
    return this.#seen.size;
  }

  /**
   * Records a nonce the signature check accepted. False when it was seen
   * before, or when its second is at or below the eviction floor.
   */
  accept(nonce: string, timestamp: number, nowS: number): boolean {
    this.#prune(nowS);
    if (timestamp <= this.#floor) return false;
    if (this.#seen.has(nonce)) return false;
    if (this.#seen.size >= this.#capacity) {
      const oldest = this.#stamps[this.#head]!;
      this.#forgetOldest();
      if (oldest > this.#floor) this.#floor = oldest;
      if (timestamp <= this.#floor) return false;
    }
    this.#seen.add(nonce);
    this.#nonces.push(nonce);
    this.#stamps.push(timestamp);
    return true;
  }

  /** Forgets nonces whose timestamp left the window (a replay of them is stale anyway). */
  #prune(nowS: number): void {
    const expired = nowS - this.#windowS;
    while (this.#head < this.#stamps.length && this.#stamps[this.#head]! < expired) this.#forgetOldest();
  }

  #forgetOldest(): void {
    this.#seen.delete(this.#nonces[this.#head]!);
    this.#nonces[this.#head] = "";
    this.#head++;
    // The forgotten front is dropped once it is at least half of the queue: each entry is copied at most
    // once more on average, so forgetting stays O(1) amortized.
    if (this.#head >= 1024 && this.#head * 2 >= this.#stamps.length) {
      this.#nonces = this.#nonces.slice(this.#head);
      this.#stamps = this.#stamps.slice(this.#head);
      this.#head = 0;
    }
  }
}
