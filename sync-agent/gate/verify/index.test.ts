import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { canonicalString, importSigningKey, signRequest, SIGNATURE_HEADER, type SignedRequest } from "../../../worker/snapshot/signing.ts";
import { KeyRing } from "../keys/index.ts";
import { ReplayCache } from "../replay/index.ts";
import { verify, type VerifyContext } from "./index.ts";

const SECRET = "gate-test-secret-0123456789abcdefghij";
const NOW = 1_760_000_000;
const req: SignedRequest = {
  keyId: "k1",
  timestamp: NOW,
  nonce: "AAAAAAAAAAAAAAAAAAAAAA",
  method: "POST",
  host: "app.example.com",
  target: "/orders?id=7",
  cluster: "home",
  node: "node-1",
  nodePort: 30080,
};

function ctx(over: Partial<VerifyContext> = {}): VerifyContext {
  return {
    keys: KeyRing.of({ k1: SECRET }),
    replay: new ReplayCache({ capacity: 100, windowS: 30 }),
    nowS: NOW,
    maxSkewS: 30,
    ports: { min: 30000, max: 32767 },
    nodeName: "node-1",
    clusterName: "home",
    ...over,
  };
}

async function head(r: SignedRequest, secret = SECRET, extra: string[] = []) {
  const sig = (await signRequest(await importSigningKey(secret), r))!;
  return { method: r.method, target: r.target, rawHeaders: ["Host", r.host, SIGNATURE_HEADER, sig, ...extra] };
}

describe("gate verification", () => {
  it("accepts what the worker's Web Crypto signer made (same canonical string, node:crypto HMAC)", async () => {
    expect(verify(await head(req), ctx())).toEqual({ ok: true, nodePort: 30080, keyId: "k1" });
    // The same bytes under node:crypto: the gate's HMAC is the worker's.
    const mac = createHmac("sha256", SECRET).update(canonicalString(req)!).digest("base64url");
    expect((await head(req)).rawHeaders[3]).toContain(`s=${mac}`);
  });

  it("refuses and says why (to the metrics): unsigned, wrong key, stale, tampered, replayed", async () => {
    expect(verify({ method: "GET", target: "/", rawHeaders: ["Host", "a"] }, ctx())).toEqual({ ok: false, reason: "unsigned" });
    expect(verify(await head(req, "another-secret-0123456789abcdefghijklmn"), ctx())).toEqual({ ok: false, reason: "bad_signature" });
    expect(verify(await head({ ...req, keyId: "k9" }), ctx())).toEqual({ ok: false, reason: "unknown_key" });
    expect(verify(await head(req), ctx({ keys: KeyRing.of({}) }))).toEqual({ ok: false, reason: "no_key" });
    expect(verify(await head({ ...req, timestamp: NOW - 31 }), ctx())).toEqual({ ok: false, reason: "stale" });
    expect(verify(await head({ ...req, timestamp: NOW + 31 }), ctx())).toEqual({ ok: false, reason: "stale" });
    expect(verify(await head({ ...req, nodePort: 10250 }), ctx())).toEqual({ ok: false, reason: "port_not_allowed" });
    const h = await head(req);
    expect(verify({ ...h, target: "/orders?id=8" }, ctx())).toEqual({ ok: false, reason: "bad_signature" });
    expect(verify({ ...h, method: "GET" }, ctx())).toEqual({ ok: false, reason: "bad_signature" });
    expect(verify({ ...h, rawHeaders: ["Host", "evil.example.com", ...h.rawHeaders.slice(2)] }, ctx())).toEqual({ ok: false, reason: "bad_signature" });
    // A genuine request signed for another node (node-2's, replayed here): wrong_node, and its nonce is not spent here.
    const forNode2 = await head({ ...req, node: "node-2" });
    expect(verify(forNode2, ctx())).toEqual({ ok: false, reason: "wrong_node" });
    // The node name in the header rewritten without the key: the HMAC no longer matches.
    expect(verify({ ...forNode2, rawHeaders: ["Host", req.host, SIGNATURE_HEADER, forNode2.rawHeaders[3]!.replace(";d=node-2;", ";d=node-1;")] }, ctx())).toEqual({ ok: false, reason: "bad_signature" });
    // A v1 (address-bound) or v2 (no cluster) header from an old worker is not understood.
    expect(verify({ ...h, rawHeaders: ["Host", req.host, SIGNATURE_HEADER, h.rawHeaders[3]!.replace("v3;", "v1;")] }, ctx())).toEqual({ ok: false, reason: "malformed" });
    expect(verify({ ...h, rawHeaders: ["Host", req.host, SIGNATURE_HEADER, h.rawHeaders[3]!.replace("v3;", "v2;").replace(";c=home;", ";")] }, ctx())).toEqual({ ok: false, reason: "malformed" });
    // A genuine request signed for another cluster's node of the same name (one key shared by both): wrong_cluster.
    expect(verify(await head({ ...req, cluster: "lab" }), ctx())).toEqual({ ok: false, reason: "wrong_cluster" });
    const c = ctx();
    expect(verify(h, c).ok).toBe(true);
    expect(verify(h, c)).toEqual({ ok: false, reason: "replayed" });
  });

  it("refuses duplicate signature or Host headers and absolute-form targets", async () => {
    const h = await head(req);
    expect(verify({ ...h, rawHeaders: [...h.rawHeaders, SIGNATURE_HEADER, h.rawHeaders[3]!] }, ctx())).toEqual({ ok: false, reason: "malformed" });
    expect(verify({ ...h, rawHeaders: [...h.rawHeaders, "host", "app.example.com"] }, ctx())).toEqual({ ok: false, reason: "bad_host" });
    const abs = await head({ ...req, target: "http://app.example.com/orders" });
    expect(verify(abs, ctx())).toEqual({ ok: false, reason: "bad_target" });
    expect(verify({ ...h, rawHeaders: ["Host", "app.example.com", SIGNATURE_HEADER, `${h.rawHeaders[3]} `] }, ctx())).toEqual({ ok: false, reason: "malformed" });
  });

  it("accepts the previous key alongside the current one during a rotation", async () => {
    const keys = KeyRing.of({ k1: SECRET, k2: "the-next-secret-0123456789abcdefghijk" });
    expect(verify(await head(req), ctx({ keys })).ok).toBe(true);
    expect(verify(await head({ ...req, keyId: "k2", nonce: "BAAAAAAAAAAAAAAAAAAAAA" }, "the-next-secret-0123456789abcdefghijk"), ctx({ keys })).ok).toBe(true);
  });

  it("does not remember the nonce of a request whose signature failed or that was meant for another node", async () => {
    const c = ctx();
    expect(verify(await head(req, "another-secret-0123456789abcdefghijklmn"), c).ok).toBe(false);
    expect(verify(await head({ ...req, node: "node-2" }), c).ok).toBe(false);
    expect(c.replay.size).toBe(0);
    expect(verify(await head(req), c).ok).toBe(true);
  });
});
