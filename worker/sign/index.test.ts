import { afterEach, describe, expect, it, vi } from "vitest";
import { canonicalString, importSigningKey, hmacBase64url, parseSignatureHeader } from "../snapshot/signing.ts";
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
});
