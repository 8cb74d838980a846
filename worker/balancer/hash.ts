// Small, fast, well-mixed 32-bit hash for rendezvous hashing and cookie values.
// FNV-1a over UTF-16 code units, finished with murmur3's avalanche step so that
// keys differing in one character land far apart.
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** murmur3's 32-bit finalizer: every input bit affects every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A rendezvous score from a client's hash and a node's seed: murmur3's finalizer over both. */
export function rendezvousScore(client: number, seed: number): number {
  return fmix32(Math.imul(client ^ seed, 0x9e3779b1) ^ seed);
}
