import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { canonicalString, formatSignatureHeader, importSigningKey, hmacBase64url, parseSignatureHeader } from "../snapshot/signing.ts";
import { GateSigner, readGateKeys } from "./index.ts";

const S1 = "cluster-one-secret-0123456789abcdefghij";
const S2 = "shared-fallback-secret-0123456789abcdef";
const target = { method: "GET", host: "app.example.com", target: "/x?y=1", node: "node-1", nodePort: 30080 };

afterEach(() => vi.restoreAllMocks());

describe("gate keys from the worker's secrets", () => {
  it("reads a key per cluster and a fallback, and names bad entries without quoting a secret", () => {
    const keys = readGateKeys({ EDGELB_GATE_KEYS: JSON.stringify({ one: `k1:${S1}`, bad: "k1:short-secret", worse: 7 }), EDGELB_GATE_KEY: `k9:${S2}` });
    expect(keys.byCluster.get("one")).toEqual({ id: "k1", secret: S1 });
    expect(keys.fallback).toEqual({ id: "k9", secret: S2 });
    expect(keys.byCluster.has("bad")).toBe(false);
    expect(keys.problems).toHaveLength(2);
    expect(keys.problems.join()).not.toContain("short-secret");
    expect(readGateKeys({ EDGELB_GATE_KEYS: `{"one": "k1:${S1}"` }).problems[0]).not.toContain(S1);
  });
});

describe("GateSigner", () => {
  it("signs with the cluster's own key, else the fallback, else not at all", async () => {
    const signer = new GateSigner(readGateKeys({ EDGELB_GATE_KEYS: JSON.stringify({ one: `k1:${S1}` }), EDGELB_GATE_KEY: `k9:${S2}` }), { now: () => 1_760_000_000_500, nonce: () => "N".repeat(22) });
    const header = (await signer.sign("one", target))!;
    const parsed = parseSignatureHeader(header)!;
    expect(parsed).toMatchObject({ keyId: "k1", timestamp: 1_760_000_000, nonce: "N".repeat(22), nodePort: 30080 });
    const canonical = canonicalString({ keyId: "k1", timestamp: 1_760_000_000, nonce: "N".repeat(22), cluster: "one", ...target })!;
    expect(parsed.signature).toBe(await hmacBase64url(await importSigningKey(S1), canonical));
    expect(parseSignatureHeader((await signer.sign("other", target))!)!.keyId).toBe("k9");
    expect(await new GateSigner(readGateKeys({})).sign("one", target)).toBeUndefined();
    expect(await signer.sign("one", { ...target, host: "bad host" })).toBeNull();
  });

  it("imports a key once per isolate, not per request", async () => {
    const spy = vi.spyOn(crypto.subtle, "importKey");
    const signer = new GateSigner(readGateKeys({ EDGELB_GATE_KEY: `k9:${S2}` }));
    for (let i = 0; i < 20; i++) await signer.sign(i % 2 ? "a" : "b", target);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it("uses a fresh nonce for every request", async () => {
    const signer = new GateSigner(readGateKeys({ EDGELB_GATE_KEY: `k9:${S2}` }));
    const nonces = new Set<string>();
    for (let i = 0; i < 50; i++) nonces.add(parseSignatureHeader((await signer.sign("a", target))!)!.nonce);
    expect(nonces.size).toBe(50);
  });

  it("finds a cluster's key by the key object, not by a string built per request", async () => {
    // Two clusters configured with the same secret under the same id: one import per configured key
    // object, and the secret is never read again after its import.
    const keys = readGateKeys({ EDGELB_GATE_KEYS: JSON.stringify({ a: `k1:${S1}`, b: `k1:${S1}` }) });
    const spy = vi.spyOn(crypto.subtle, "importKey");
    const signer = new GateSigner(keys);
    await signer.sign("a", target);
    await signer.sign("b", target);
    expect(spy).toHaveBeenCalledTimes(2);
    for (const k of keys.byCluster.values()) {
      Object.defineProperty(k, "secret", {
        get() {
          throw new Error("the secret was read again after its import");
        },
      });
    }
    for (let i = 0; i < 10; i++) expect(await signer.sign(i % 2 ? "a" : "b", target)).toMatch(/^v3;k=k1;/);
    expect(spy).toHaveBeenCalledTimes(2);
  });

  it("requests signed at the same time each get the MAC of their own canonical string", async () => {
    // The signer encodes every canonical string into one reused buffer: a signature computed after the
    // next request overwrote it would carry the wrong MAC, and the gate would refuse it.
    const key = await importSigningKey(S2);
    const signer = new GateSigner(readGateKeys({ EDGELB_GATE_KEY: `k9:${S2}` }), { now: () => 1_760_000_000_000 });
    await signer.sign("c", target); // the key imported: later calls take the path that reuses the buffer
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ path: fc.stringMatching(/^\/[a-z0-9/?=&._~-]{0,1500}$/), node: fc.constantFrom("node-1", "node-22", "n.example"), nodePort: fc.integer({ min: 1, max: 65535 }) }), { minLength: 1, maxLength: 12 }),
        async (requests) => {
          const headers = await Promise.all(requests.map((r) => signer.sign("c", { ...target, target: r.path, node: r.node, nodePort: r.nodePort })));
          for (const [i, r] of requests.entries()) {
            const p = parseSignatureHeader(headers[i]!)!;
            const canonical = canonicalString({ keyId: "k9", timestamp: p.timestamp, nonce: p.nonce, cluster: "c", ...target, target: r.path, node: r.node, nodePort: r.nodePort })!;
            expect(p.signature).toBe(await hmacBase64url(key, canonical));
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("a failed key import is tried again by the next request", async () => {
    const spy = vi.spyOn(crypto.subtle, "importKey").mockRejectedValueOnce(new Error("import failed"));
    const signer = new GateSigner(readGateKeys({ EDGELB_GATE_KEY: `k9:${S2}` }));
    await expect(signer.sign("a", target)).rejects.toThrow("import failed");
    expect(await signer.sign("a", target)).toMatch(/^v3;k=k9;/);
    expect(spy).toHaveBeenCalledTimes(2);
  });

  it("nonces come from one per-isolate sequence: 16 characters of random prefix, then a counter", async () => {
    const signer = new GateSigner(readGateKeys({ EDGELB_GATE_KEY: `k9:${S2}` }));
    const spy = vi.spyOn(crypto, "getRandomValues");
    const nonces: string[] = [];
    for (let i = 0; i < 20; i++) nonces.push(parseSignatureHeader((await signer.sign("a", target))!)!.nonce);
    expect(new Set(nonces).size).toBe(20);
    expect(new Set(nonces.map((n) => n.slice(0, 16))).size).toBe(1);
    expect(spy.mock.calls.length).toBeLessThanOrEqual(1);
  });

  it("signs exactly canonicalString's bytes and writes exactly formatSignatureHeader's header, for any fields, cached origin or not", async () => {
    // The signer spells the fixed fields once per origin and the timestamp once per second; the gate
    // verifies with canonicalString and parses formatSignatureHeader's shape. Any drift is a 403.
    const key = await importSigningKey(S2);
    let now = 1_760_000_000_000;
    const signer = new GateSigner(readGateKeys({ EDGELB_GATE_KEY: `k9:${S2}` }), { now: () => now });
    const origins = [{}, {}, {}];
    let signed = 0;
    const anyField = fc.oneof(fc.stringMatching(/^[\x21-\x7e]{1,40}$/), fc.string({ maxLength: 20 }), fc.constantFrom("", "a b", "x\r\ny", "\u010d\u010a", "é"));
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          // Mostly signable fields, so that both outcomes come up often.
          method: fc.oneof({ arbitrary: fc.constantFrom("GET", "POST", "HEAD"), weight: 6 }, { arbitrary: anyField, weight: 1 }),
          host: fc.oneof({ arbitrary: fc.constantFrom("app.example.com", "a.b:8080"), weight: 6 }, { arbitrary: anyField, weight: 1 }),
          target: fc.oneof({ arbitrary: fc.stringMatching(/^\/[\x21-\x7e]{0,300}$/), weight: 6 }, { arbitrary: anyField, weight: 1 }),
          cluster: fc.oneof({ arbitrary: fc.constantFrom("c", "prod-eu"), weight: 6 }, { arbitrary: fc.constantFrom("Bad", "-x"), weight: 1 }),
          node: fc.oneof({ arbitrary: fc.constantFrom("node-1", "n.example"), weight: 6 }, { arbitrary: fc.constantFrom("Node_1", "", "x".repeat(254)), weight: 1 }),
          nodePort: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 65535 }), weight: 6 }, { arbitrary: fc.constantFrom(0, 65536, -1, 1.5, Number.NaN), weight: 1 }),
          origin: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
          seconds: fc.integer({ min: 0, max: 5 }),
        }),
        async (r) => {
          now += r.seconds * 1000 + 7;
          const t = { method: r.method, host: r.host, target: r.target, node: r.node, nodePort: r.nodePort, ...(r.origin === undefined ? {} : { origin: origins[r.origin]! }) };
          const header = await signer.sign(r.cluster, t);
          const timestamp = Math.floor(now / 1000);
          if (header === null) {
            expect(canonicalString({ keyId: "k9", timestamp, nonce: "N".repeat(22), cluster: r.cluster, ...t })).toBeNull();
            return;
          }
          const p = parseSignatureHeader(header!)!;
          expect(p.timestamp).toBe(timestamp);
          const canonical = canonicalString({ keyId: "k9", timestamp, nonce: p.nonce, cluster: r.cluster, ...t });
          expect(canonical).not.toBeNull();
          const signature = await hmacBase64url(key, canonical!);
          expect(header).toBe(formatSignatureHeader({ keyId: "k9", timestamp, nonce: p.nonce, nodePort: r.nodePort, cluster: r.cluster, node: r.node, signature }));
          signed++;
        },
      ),
      { numRuns: 300 },
    );
    // Both outcomes were exercised, not only refusals.
    expect(signed).toBeGreaterThan(30);
  });

  it("checks an origin's fixed fields (cluster, node, NodePort) once, and only the client's fields per request", async () => {
    const signer = new GateSigner(readGateKeys({ EDGELB_GATE_KEY: `k9:${S2}` }));
    const origin = {};
    await signer.sign("c", { ...target, origin });
    const test = vi.spyOn(RegExp.prototype, "test");
    for (let i = 0; i < 10; i++) expect(await signer.sign("c", { ...target, target: `/r/${i}`, origin })).toMatch(/^v3;k=k9;/);
    // Method, Host and target: three checks a request (canonicalString makes twelve).
    expect(test.mock.calls.length).toBe(30);
    // The same origin object now naming another node (a changed route) is checked and signed for that node.
    test.mockClear();
    const moved = parseSignatureHeader((await signer.sign("c", { ...target, node: "node-2", origin }))!)!;
    expect(moved.node).toBe("node-2");
    expect(test.mock.calls.length).toBeGreaterThan(3);
    expect(await signer.sign("c", { ...target, node: "Not A Node", origin })).toBeNull();
  });
});

