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
  /** nonce → its timestamp (seconds), in insertion order (close to timestamp order). */
  readonly #seen = new Map<string, number>();
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
      const oldest = this.#seen.entries().next().value as [string, number];
      this.#seen.delete(oldest[0]);
      if (oldest[1] > this.#floor) this.#floor = oldest[1];
      if (timestamp <= this.#floor) return false;
    }
    this.#seen.set(nonce, timestamp);
    return true;
  }

  /** Forgets nonces whose timestamp left the window (a replay of them is stale anyway). */
  #prune(nowS: number): void {
    const expired = nowS - this.#windowS;
    for (const [nonce, ts] of this.#seen) {
      if (ts >= expired) break;
      this.#seen.delete(nonce);
    }
  }
}
