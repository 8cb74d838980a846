// The gate's decision on one request head: forward to which NodePort, or
// refuse and why. Pure apart from the HMAC and the replay cache it is given;
// the server turns a refusal into a bare 403. The canonical string comes from
// the module the worker signs with (worker/snapshot/signing.ts).
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto";
import { canonicalString, parseSignatureHeader, SIGNATURE_HEADER } from "../../../worker/snapshot/signing.ts";
import type { ReplayCache } from "../replay/index.ts";
import { sameName } from "../request-head/index.ts";

export type RejectReason =
  | "unsigned"
  | "malformed"
  | "no_key"
  | "unknown_key"
  | "stale"
  | "port_not_allowed"
  | "bad_target"
  | "bad_host"
  | "bad_signature"
  | "wrong_cluster"
  | "wrong_node"
  | "replayed";

export const REJECT_REASONS: readonly RejectReason[] = [
  "unsigned",
  "malformed",
  "no_key",
  "unknown_key",
  "stale",
  "port_not_allowed",
  "bad_target",
  "bad_host",
  "bad_signature",
  "wrong_cluster",
  "wrong_node",
  "replayed",
];

/** The keys the gate accepts: the current one and, during a rotation, the previous one. */
export interface KeyLookup {
  get(id: string): Buffer | undefined;
  readonly size: number;
}

export interface VerifyContext {
  keys: KeyLookup;
  replay: ReplayCache;
  /** Seconds. */
  nowS: number;
  maxSkewS: number;
  /** NodePorts the gate forwards to (default: the NodePort range). */
  ports: { min: number; max: number };
  /** This gate's cluster name (--cluster): a signature must name it. */
  clusterName: string;
  /** This gate's Node name (--node-name): a signature must name it. */
  nodeName: string;
}

/** The parts of a request head the decision reads (from node:http's rawHeaders). */
export interface RequestHead {
  method: string;
  /** As received on the request line. */
  target: string;
  rawHeaders: readonly string[];
}

export type Verdict = { ok: true; nodePort: number; keyId: string } | { ok: false; reason: RejectReason };

/** How many times a header appears, and its first value. */
function field(rawHeaders: readonly string[], name: string): { count: number; value: string | undefined } {
  let count = 0;
  let value: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (sameName(rawHeaders[i]!, name)) {
      if (count++ === 0) value = rawHeaders[i + 1];
    }
  }
  return { count, value };
}

// One KeyObject per loaded secret: the key is prepared once, not on every request. The key ring swaps
// its Buffers whole on a reload, so an old secret's entry goes with it.
const prepared = new WeakMap<Buffer, KeyObject>();
function hmacKey(secret: Buffer): KeyObject {
  let key = prepared.get(secret);
  if (!key) prepared.set(secret, (key = createSecretKey(secret)));
  return key;
}

export function hasSignature(rawHeaders: readonly string[]): boolean {
  return field(rawHeaders, SIGNATURE_HEADER).count > 0;
}

export function verify(head: RequestHead, ctx: VerifyContext): Verdict {
  const sig = field(head.rawHeaders, SIGNATURE_HEADER);
  if (sig.count === 0) return { ok: false, reason: "unsigned" };
  // Two signature headers: which one would a proxy downstream believe? Neither.
  if (sig.count > 1) return { ok: false, reason: "malformed" };
  const parsed = parseSignatureHeader(sig.value!);
  if (!parsed) return { ok: false, reason: "malformed" };
  if (ctx.keys.size === 0) return { ok: false, reason: "no_key" };
  const secret = ctx.keys.get(parsed.keyId);
  if (!secret) return { ok: false, reason: "unknown_key" };
  if (Math.abs(ctx.nowS - parsed.timestamp) > ctx.maxSkewS) return { ok: false, reason: "stale" };
  if (parsed.nodePort < ctx.ports.min || parsed.nodePort > ctx.ports.max) return { ok: false, reason: "port_not_allowed" };
  // Origin-form only: an absolute-form target ("http://elsewhere/") or "*" is never what the edge sends.
  if (head.target.charCodeAt(0) !== 47 /* / */) return { ok: false, reason: "bad_target" };
  const host = field(head.rawHeaders, "host");
  if (host.count !== 1) return { ok: false, reason: "bad_host" };
  const canonical = canonicalString({
    keyId: parsed.keyId,
    timestamp: parsed.timestamp,
    nonce: parsed.nonce,
    method: head.method,
    host: host.value!,
    target: head.target,
    cluster: parsed.cluster,
    node: parsed.node,
    nodePort: parsed.nodePort,
  });
  if (canonical === null) return { ok: false, reason: "bad_signature" };
  const mac = createHmac("sha256", hmacKey(secret)).update(canonical).digest();
  const expected = Buffer.from(parsed.signature, "base64url");
  // Constant time: how much of a guess matched must not show in the timing.
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return { ok: false, reason: "bad_signature" };
  // Checked after the HMAC, so this reason counts only genuine edge requests meant for another node
  // (a replay across nodes, or an address in the snapshot that leads to the wrong node).
  // Likewise a genuine signature for another cluster's node (one key shared by several clusters, and
  // node names repeat across clusters): one cluster's snapshot cannot reach another cluster's NodePorts.
  if (parsed.cluster !== ctx.clusterName) return { ok: false, reason: "wrong_cluster" };
  if (parsed.node !== ctx.nodeName) return { ok: false, reason: "wrong_node" };
  // Only a valid signature's nonce is remembered: unsigned noise cannot fill the cache.
  if (!ctx.replay.accept(parsed.nonce, parsed.timestamp, ctx.nowS)) return { ok: false, reason: "replayed" };
  return { ok: true, nodePort: parsed.nodePort, keyId: parsed.keyId };
}
