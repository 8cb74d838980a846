import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseSignatureHeader, formatSignatureHeader } from "../../snapshot/signing.ts";
import { COUNTER_VALUES, NonceSequence } from "./index.ts";

/** A random source that hands out the given byte patterns in turn (counting how often it was asked). */
function scripted(...fills: number[][]) {
  let calls = 0;
  const random = (b: Uint8Array) => {
    const fill = fills[Math.min(calls++, fills.length - 1)]!;
    for (let i = 0; i < b.length; i++) b[i] = fill[i % fill.length]!;
    return b;
  };
  return { random, calls: () => calls };
}

const asHeader = (nonce: string) =>
  formatSignatureHeader({ keyId: "k1", timestamp: 1_760_000_000, nonce, nodePort: 30080, cluster: "home", node: "node-1", signature: "A".repeat(43) });

describe("nonce sequence", () => {
  it("gives 22 base64url characters the gate's header parser accepts, each one new", () => {
    const seq = new NonceSequence();
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const n = seq.next();
      expect(n).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(parseSignatureHeader(asHeader(n))?.nonce).toBe(n);
      seen.add(n);
    }
    expect(seen.size).toBe(2000);
  });

  it("draws its random prefix once, not per nonce", () => {
    const src = scripted([7, 1, 2, 3]);
    const seq = new NonceSequence(src.random);
    const first = seq.next();
    for (let i = 0; i < 1000; i++) expect(seq.next().slice(0, 16)).toBe(first.slice(0, 16));
    expect(src.calls()).toBe(1);
  });

  it("two isolates (sequences with different random prefixes) never give the same nonce", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (a, b) => {
        fc.pre(a.subarray(0, 12).some((x, i) => x !== b[i]));
        const one = new NonceSequence((x) => (x.set(a), x));
        const two = new NonceSequence((x) => (x.set(b), x));
        const seen = new Set<string>();
        for (let i = 0; i < 20; i++) seen.add(one.next()).add(two.next());
        expect(seen.size).toBe(40);
      }),
    );
  });

  it("starts its counter at a random point below 2^32 of its 2^36 values", () => {
    const at = (b12: number, b13: number, b14: number, b15: number) =>
      new NonceSequence(scripted([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, b12, b13, b14, b15]).random).next().slice(16);
    expect(at(0, 0, 0, 0)).toBe("AAAAAA");
    expect(at(0, 0, 1, 0)).toBe("AAAAEA"); // 256 = 4·64
    expect(at(255, 255, 255, 255)).toBe("D_____"); // 2^32 - 1 = 3·64^5 + 63·(64^4 + … + 1)
    expect(COUNTER_VALUES).toBe(2 ** 36);
  });

  it("takes a new random prefix before its counter would wrap, so no nonce comes twice", () => {
    const src = scripted([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0], [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0]);
    const seq = new NonceSequence(src.random, 64);
    const nonces = Array.from({ length: 65 }, () => seq.next());
    expect(new Set(nonces).size).toBe(65);
    expect(src.calls()).toBe(2);
    expect(nonces[63]!.slice(0, 16)).toBe(nonces[0]!.slice(0, 16));
    expect(nonces[64]!.slice(0, 16)).not.toBe(nonces[0]!.slice(0, 16));
    expect(nonces[64]!.slice(16)).toBe("AAAAAA");
  });

  it("spells the counter as six base64url digits at every point, across its 4,096-nonce blocks", () => {
    const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const spelled = (n: number) => Array.from({ length: 6 }, (_, i) => ALPHABET[Math.floor(n / 64 ** (5 - i)) % 64]).join("");
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 1, max: 4500 }), (start, count) => {
        const bytes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, start >>> 24, (start >>> 16) & 255, (start >>> 8) & 255, start & 255];
        const seq = new NonceSequence(scripted(bytes).random);
        // The counter starts at `start` modulo a sixteenth of its range (2^32): here `start` itself.
        for (let i = 0; i < count; i++) expect(seq.next().slice(16)).toBe(spelled(start + i));
      }),
      { numRuns: 15 },
    );
  });
});

