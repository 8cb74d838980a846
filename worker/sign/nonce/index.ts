// The nonce of each signed origin request: a per-isolate random prefix and a
// counter, instead of 16 fresh random bytes per request (a call into the
// runtime's RNG and an encoding each time).
//
// The nonce only has to be unique: the gate remembers the nonces of requests
// whose HMAC it accepted and refuses a second use within the clock window.
// It need not be unpredictable: it is signed, so knowing the next one gives
// nothing without the key, and an unsigned or forged request never reaches
// the replay cache. Uniqueness across isolates (every location signs with the
// same key) comes from the 96-bit random prefix; within an isolate from the
// counter, which starts at a random point (the tail says nothing about how
// many requests an isolate signed) and draws a new prefix before it wraps.
// The wire format is unchanged: 22 base64url characters.
import { base64url } from "../../snapshot/signing.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** Random bytes of the prefix: 12 bytes are exactly 16 base64url characters. */
const PREFIX_BYTES = 12;
/** Counter characters: 22 - 16. */
const COUNTER_CHARS = 6;
/** 64^6 = 2^36 counter values per prefix. */
export const COUNTER_VALUES = 64 ** COUNTER_CHARS;

export class NonceSequence {
  readonly #random: (bytes: Uint8Array) => Uint8Array;
  readonly #values: number;
  #prefix = "";
  /** The prefix and the counter's top four characters, for the counter's current block of 4,096. */
  #head = "";
  #block = -1;
  #next = 0;
  #end = 0;

  /**
   * `random` fills its argument with random bytes (default: Web Crypto's getRandomValues); `values`, the
   * counter values per prefix, is smaller only in tests (so they can see a prefix change).
   */
  constructor(random: (bytes: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b), values = COUNTER_VALUES) {
    this.#random = random;
    this.#values = Math.min(Math.max(1, Math.floor(values)), COUNTER_VALUES);
  }

  /** The next nonce: 22 base64url characters, never repeated by this sequence. */
  next(): string {
    // Drawn on first use, not at construction: Workers refuse random values outside a request.
    if (this.#next >= this.#end) this.#reseed();
    const n = this.#next++;
    // The prefix and the counter's top four characters change once every 4,096 nonces: spelled then,
    // so a nonce is one string joined from three (this runs for every signed request).
    const block = Math.floor(n / 4096);
    if (block !== this.#block) {
      this.#block = block;
      let m = block;
      let top = "";
      for (let i = 0; i < COUNTER_CHARS - 2; i++) {
        top = ALPHABET[m % 64]! + top;
        m = Math.floor(m / 64);
      }
      this.#head = this.#prefix + top;
    }
    // The low 12 bits survive the 32-bit truncation of `&` (n < 2^36).
    return this.#head + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }

  #reseed(): void {
    const bytes = this.#random(new Uint8Array(PREFIX_BYTES + 4));
    this.#prefix = base64url(bytes.subarray(0, PREFIX_BYTES));
    // In the first sixteenth of the counter's range (below 2^32), so at least 15/16 of it (2^36 - 2^32
    // nonces) come before the next prefix.
    const start = ((bytes[12]! << 24) | (bytes[13]! << 16) | (bytes[14]! << 8) | bytes[15]!) >>> 0;
    this.#next = start % Math.max(1, Math.floor(this.#values / 16));
    this.#end = this.#values;
    this.#block = -1;
  }
}
