import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import {
  base64url,
  base64urlPortable,
  canonicalString,
  formatSignatureHeader,
  importSigningKey,
  normalizeAddress,
  parseKeySpec,
  parseSignatureHeader,
  signRequest,
  type SignedRequest,
} from "./signing.ts";

const base: SignedRequest = {
  keyId: "k1",
  timestamp: 1_760_000_000,
  nonce: "AAAAAAAAAAAAAAAAAAAAAA",
  method: "GET",
  host: "app.example.com",
  target: "/a?b=c",
  cluster: "home",
  node: "node-1",
  nodePort: 30080,
};

// Strings rich in the characters an attacker would use to shift one field into the next.
const tricky = fc.string({ unit: fc.constantFrom("a", "b", "/", ":", "1", " ", "\r", "\n", "\t", "\0", "=", ";", "é"), maxLength: 8 });
const request = fc.record({
  keyId: tricky,
  timestamp: fc.integer({ min: 0, max: 2 ** 40 }),
  nonce: tricky,
  method: tricky,
  host: tricky,
  target: tricky,
  cluster: tricky,
  node: tricky,
  nodePort: fc.integer({ min: 0, max: 70000 }),
});

describe("canonical string", () => {
  it("never gives two different requests the same bytes, whatever CR, LF or spaces their fields hold", () => {
    fc.assert(
      fc.property(request, request, (a, b) => {
        const ca = canonicalString(a);
        const cb = canonicalString(b);
        if (ca === null || cb === null) return;
        const same = JSON.stringify(a) === JSON.stringify(b);
        expect(ca === cb).toBe(same);
      }),
      { numRuns: 3000 },
    );
  });

  it("refuses to sign a field holding a space, CR, LF, NUL or non-ASCII", () => {
    fc.assert(
      fc.property(fc.constantFrom("keyId", "nonce", "method", "host", "target", "cluster", "node"), fc.constantFrom(" ", "\r", "\n", "\r\n", "\0", "\t", "é"), (field, bad) => {
        expect(canonicalString({ ...base, [field]: `${(base as unknown as Record<string, string>)[field]}${bad}` } as SignedRequest)).toBeNull();
      }),
    );
    expect(canonicalString({ ...base, host: "" })).toBeNull();
    expect(canonicalString({ ...base, nodePort: 0 })).toBeNull();
    expect(canonicalString({ ...base, nodePort: 65536 })).toBeNull();
  });

  it("moving a character from one field to the next changes the string", () => {
    expect(canonicalString({ ...base, host: "a.b", target: "/c" })).not.toBe(canonicalString({ ...base, host: "a.b/", target: "c" }));
  });

  it("binds the node's name, never an address: a name that is not a Kubernetes Node name is not signed", () => {
    expect(canonicalString(base)).toContain("\n6:node-1\n");
    expect(canonicalString(base)).not.toContain("203.0.113");
    for (const node of ["203.0.113.7:80", "Node-1", "node_1", "-node", "node.", "a".repeat(254), "node 1"]) expect(canonicalString({ ...base, node })).toBeNull();
    expect(canonicalString({ ...base, node: "ip-10-0-1-5.eu-west-1.compute.internal" })).not.toBeNull();
  });

  it("spells an address one way (the gate's --node-ip): brackets, case and IPv4-mapped IPv6 do not matter", () => {
    expect(normalizeAddress("[2001:DB8::1]")).toBe("2001:db8::1");
    expect(normalizeAddress("::ffff:127.23.1.11")).toBe("127.23.1.11");
  });
});

describe("signature header", () => {
  const fields = fc.record({
    keyId: fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/),
    timestamp: fc.integer({ min: 0, max: 999_999_999_999 }),
    nonce: fc.stringMatching(/^[A-Za-z0-9_-]{22}$/),
    nodePort: fc.integer({ min: 1, max: 65535 }),
    cluster: fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/),
    node: fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?){0,3}$/),
    signature: fc.stringMatching(/^[A-Za-z0-9_-]{43}$/),
  });

  it("parses exactly what it formats", () => {
    fc.assert(
      fc.property(fields, (f) => {
        expect(parseSignatureHeader(formatSignatureHeader(f))).toEqual(f);
      }),
    );
  });

  it("refuses anything else: extra bytes, a second value, another version, a bad port", () => {
    fc.assert(
      fc.property(fields, fc.constantFrom(" ", ",", "\r\n", ";x=1", "a"), (f, extra) => {
        const h = formatSignatureHeader(f);
        expect(parseSignatureHeader(h + extra)).toBeNull();
        expect(parseSignatureHeader(extra + h)).toBeNull();
        expect(parseSignatureHeader(`${h}, ${h}`)).toBeNull();
      }),
    );
    const good = formatSignatureHeader({ keyId: "k", timestamp: 1, nonce: "A".repeat(22), nodePort: 30000, cluster: "home", node: "node-1", signature: "B".repeat(43) });
    expect(parseSignatureHeader(good)).not.toBeNull();
    expect(parseSignatureHeader(good.replace("v3", "v2"))).toBeNull();
    expect(parseSignatureHeader(good.replace("v3", "v1"))).toBeNull();
    // v2 (no cluster) is refused: a signature must name the cluster.
    expect(parseSignatureHeader(good.replace("v3", "v2").replace("c=home;", ""))).toBeNull();
    expect(parseSignatureHeader(good.replace("c=home;", ""))).toBeNull();
    expect(parseSignatureHeader(good.replace("c=home", "c=Home"))).toBeNull();
    expect(parseSignatureHeader(good.replace("d=node-1", "d=node-"))).toBeNull();
    expect(parseSignatureHeader(good.replace("d=node-1", "d=Node-1"))).toBeNull();
    expect(parseSignatureHeader(good.replace("d=node-1;", ""))).toBeNull();
    expect(parseSignatureHeader(good.replace("p=30000", "p=70000"))).toBeNull();
    expect(parseSignatureHeader(good.replace("p=30000", "p=0"))).toBeNull();
  });
});

describe("signing", () => {
  it("signs with HMAC-SHA-256 over the canonical string (known answer)", async () => {
    const key = await importSigningKey("0123456789abcdef0123456789abcdef");
    const header = (await signRequest(key, base))!;
    // Computed independently (Python's hmac over the canonical string as documented in docs/gate.md).
    expect(header).toBe(`v3;k=k1;t=1760000000;n=AAAAAAAAAAAAAAAAAAAAAA;p=30080;c=home;d=node-1;s=${KNOWN_SIGNATURE}`);
  });

  it("changes the signature when any signed field changes", async () => {
    const key = await importSigningKey("0123456789abcdef0123456789abcdef");
    const sig = async (r: SignedRequest) => parseSignatureHeader((await signRequest(key, r))!)!.signature;
    const original = await sig(base);
    for (const change of [{ method: "POST" }, { host: "other.example.com" }, { target: "/a?b=d" }, { cluster: "lab" }, { node: "node-2" }, { nodePort: 30081 }, { timestamp: base.timestamp + 1 }, { nonce: "BAAAAAAAAAAAAAAAAAAAAA" }]) {
      expect(await sig({ ...base, ...change })).not.toBe(original);
    }
  });

  it("reads key specs as <id>:<secret> and never quotes a secret in an error", () => {
    expect(parseKeySpec("k2:" + "s".repeat(44))).toEqual({ id: "k2", secret: "s".repeat(44) });
    const short = parseKeySpec("k2:tooshort-secret");
    expect("error" in short && short.error).not.toContain("tooshort");
    expect(parseKeySpec("no-colon")).toHaveProperty("error");
    expect(parseKeySpec("bad id:" + "s".repeat(44))).toHaveProperty("error");
  });
});

const KNOWN_SIGNATURE = "wKIqnmYeJueKcYuhnhcmsQP8lJR7xxROsUV1j73ABi8";

describe("base64url", () => {
  it("the runtime's encoder (workerd) and the portable one (Node 20, the gate) agree on every input", () => {
    // These tests run in workerd: it has the native encoder, which base64url must then use.
    expect(typeof (Uint8Array.prototype as { toBase64?: unknown }).toBase64).toBe("function");
    const native = vi.spyOn(Uint8Array.prototype as unknown as { toBase64: () => string }, "toBase64");
    expect(base64url(new Uint8Array([251, 255, 0]))).toBe("-_8A");
    expect(native).toHaveBeenCalledTimes(1);
    native.mockRestore();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const s = base64url(bytes);
        expect(s).toBe(base64urlPortable(bytes));
        expect(s).toMatch(/^[A-Za-z0-9_-]*$/);
        expect(s.length).toBe(Math.ceil((bytes.length * 4) / 3));
        // And it decodes back to the bytes.
        const std = s.replace(/-/g, "+").replace(/_/g, "/");
        expect(Uint8Array.from(atob(std + "=".repeat((4 - (std.length % 4)) % 4)), (c) => c.charCodeAt(0))).toEqual(bytes);
      }),
    );
  });
});

