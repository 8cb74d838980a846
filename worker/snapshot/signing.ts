// Signed edge requests (issue 15): the one definition of what the worker signs
// and the node gate verifies. Both sides import this module, so the canonical
// string can never drift between them. Web Crypto only (workerd and Node 20).
//
// The canonical string is injective: every field must be visible ASCII
// (0x21-0x7E: no space, CR, LF or NUL can reach it) and is length-prefixed, so
// no choice of field values makes two different requests sign the same bytes.

/** The one request header that carries the signature; the gate strips it. */
export const SIGNATURE_HEADER = "x-edgelb-signature";
/**
 * Set by the node gate on its own refusals only (value "refused", no reason). The gate strips it from
 * every answer it relays from an app, so an app behind a working gate cannot forge it; the worker
 * treats such an answer as a failure before anything reached the app and strips it from what clients see.
 */
export const GATE_REFUSED_HEADER = "x-edgelb-gate";
/** GATE_REFUSED_HEADER's value on the gate's 403: the signature was refused, nothing reached the app. */
export const GATE_REFUSED = "refused";
/**
 * GATE_REFUSED_HEADER's value on the gate's 502 when it could not connect to the NodePort (refused,
 * unreachable, connect timeout): not a byte went upstream, so the worker treats it like a failed
 * connection to that node (any method moves on, no retry budget, counts for ejection).
 */
export const GATE_UPSTREAM_UNREACHABLE = "upstream-unreachable";
/**
 * On that 502, why the gate could not connect: "connect-timeout" (the NodePort drops connections: a host
 * firewall, a NetworkPolicy, half-applied kube-proxy rules) or "refused". Stripped from relayed answers
 * like GATE_REFUSED_HEADER, so only the gate can say it.
 */
export const GATE_CAUSE_HEADER = "x-edgelb-gate-cause";
/**
 * v3 binds the destination's cluster and node NAMES (v1 bound the node's address, which fails closed for
 * nodes published by hostname, behind NAT or with several addresses; v2 bound no cluster, so with one key
 * shared by two clusters, one cluster's snapshot could have the edge sign requests into the other's
 * NodePorts). A v1 or v2 header is refused as malformed.
 */
export const SIGNATURE_VERSION = "v3";
/** Seconds a signature stays valid either side of the gate's clock (the gate's --max-skew default). */
export const DEFAULT_MAX_SKEW_S = 30;

/** The node gate's port unless configured: outside the NodePort range (30000-32767) and below Linux's ephemeral ports (32768+). */
export const DEFAULT_GATE_PORT = 29080;

/** A key id: what a Kubernetes Secret key may be named, at most 64 characters. */
export const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
/**
 * A Kubernetes Node name (RFC 1123 subdomain, as the API server validates it): what the edge signs
 * and what the gate compares with its own name (--node-name / NODE_NAME).
 */
export const NODE_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** An edgelb cluster name (the agent's --cluster, a DNS label): signed, and compared by the gate with its --cluster. */
export const CLUSTER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Shortest secret accepted (characters): 32 bytes of randomness as base64 are 44. */
export const MIN_SECRET_LENGTH = 32;

export interface SignedRequest {
  keyId: string;
  /** Unix seconds at the edge. */
  timestamp: number;
  /** 16 random bytes, base64url (22 characters). */
  nonce: string;
  method: string;
  /** The Host header the node receives. */
  host: string;
  /** The origin-form request target (path and query) the node receives. */
  target: string;
  /** The destination's edgelb cluster: a request signed for one cluster is refused by every other cluster's gates. */
  cluster: string;
  /** The destination Node's name: a request signed for one node is refused by every other node's gate. */
  node: string;
  /** The Service's real NodePort, which the gate forwards to. */
  nodePort: number;
}

const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/**
 * The bytes the HMAC covers, or null when a field cannot be signed (empty, or
 * holding anything but visible ASCII). Length-prefixed fields, so even a
 * separator inside a field could not shift one field into the next.
 */
export function canonicalString(r: SignedRequest): string | null {
  if (!Number.isSafeInteger(r.timestamp) || r.timestamp < 0) return null;
  if (!Number.isInteger(r.nodePort) || r.nodePort < 1 || r.nodePort > 65535) return null;
  if (!NODE_NAME.test(r.node) || !CLUSTER_NAME.test(r.cluster)) return null;
  const fields = [SIGNATURE_VERSION, r.keyId, String(r.timestamp), r.nonce, r.method, r.host, r.target, r.cluster, r.node, String(r.nodePort)];
  let out = "edgelb-gate";
  for (const f of fields) {
    if (!VISIBLE_ASCII.test(f)) return null;
    out += `\n${f.length}:${f}`;
  }
  return out;
}

/**
 * One spelling per address: lowercase, no IPv6 brackets, an IPv4-mapped IPv6
 * address (how a dual-stack socket names an IPv4 peer) as plain IPv4.
 */
export function normalizeAddress(address: string): string {
  let a = address.toLowerCase();
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  return mapped ? mapped[1]! : a;
}

export interface SignatureFields {
  keyId: string;
  timestamp: number;
  nonce: string;
  nodePort: number;
  /** The destination's cluster name (signed; the gate compares it with its own). */
  cluster: string;
  /** The destination Node's name (signed; the gate compares it with its own). */
  node: string;
  /** HMAC-SHA-256, base64url without padding (43 characters). */
  signature: string;
}

const HEADER = /^v3;k=([A-Za-z0-9._-]{1,64});t=(\d{1,12});n=([A-Za-z0-9_-]{22});p=(\d{1,5});c=([a-z0-9-]{1,63});d=([a-z0-9.-]{1,253});s=([A-Za-z0-9_-]{43})$/;

export function formatSignatureHeader(f: SignatureFields): string {
  return `${SIGNATURE_VERSION};k=${f.keyId};t=${f.timestamp};n=${f.nonce};p=${f.nodePort};c=${f.cluster};d=${f.node};s=${f.signature}`;
}

/** Strict: exactly the shape formatSignatureHeader writes, or null. */
export function parseSignatureHeader(value: string): SignatureFields | null {
  const m = HEADER.exec(value);
  if (!m) return null;
  const nodePort = Number(m[4]);
  if (nodePort < 1 || nodePort > 65535 || !CLUSTER_NAME.test(m[5]!) || !NODE_NAME.test(m[6]!)) return null;
  return { keyId: m[1]!, timestamp: Number(m[2]), nonce: m[3]!, nodePort, cluster: m[5]!, node: m[6]!, signature: m[7]! };
}

/** A key as configured: `<key id>:<secret>` (worker secret) or a file named by its id (gate). */
export interface SigningKey {
  id: string;
  secret: string;
}

/** Parses `<key id>:<secret>`; the error never quotes the secret. */
export function parseKeySpec(spec: string): SigningKey | { error: string } {
  const colon = spec.indexOf(":");
  if (colon === -1) return { error: "expected <key id>:<secret>" };
  const id = spec.slice(0, colon).trim();
  const secret = spec.slice(colon + 1).trim();
  if (!KEY_ID.test(id)) return { error: `key id "${id.slice(0, 64)}" must be 1-64 letters, digits, '.', '_' or '-'` };
  const problem = secretProblem(secret);
  return problem ? { error: problem } : { id, secret };
}

/** Why a secret is not usable, or undefined. */
export function secretProblem(secret: string): string | undefined {
  if (secret.length < MIN_SECRET_LENGTH) return `the secret is shorter than ${MIN_SECRET_LENGTH} characters (use: openssl rand -base64 32)`;
  if (!VISIBLE_ASCII.test(secret)) return "the secret must be printable ASCII without spaces (use: openssl rand -base64 32)";
  return undefined;
}

const encoder = new TextEncoder();

/** An imported HMAC key (Web Crypto's CryptoKey, named so both the worker's and Node's typings accept it). */
export type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

/** The HMAC key for a secret; import once per isolate/process, not per request. */
export function importSigningKey(secret: string): Promise<HmacKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

export async function hmacBase64url(key: HmacKey, canonical: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(canonical))));
}

/** 16 random bytes as base64url (22 characters). */
export function newNonce(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/** Uint8Array.prototype.toBase64 (TC39 "Uint8Array to/from base64"): workerd has it, Node 20 does not. */
type NativeBase64 = Uint8Array & { toBase64?: (options: { alphabet: "base64url"; omitPadding: boolean }) => string };
const NATIVE_BASE64 = typeof (Uint8Array.prototype as NativeBase64).toBase64 === "function";

/** Base64url without padding; the runtime's own encoder where it has one (no string building in JavaScript). */
export function base64url(bytes: Uint8Array): string {
  return NATIVE_BASE64 ? (bytes as NativeBase64).toBase64!({ alphabet: "base64url", omitPadding: true }) : base64urlPortable(bytes);
}

/** The same encoding with btoa, for runtimes without Uint8Array.prototype.toBase64 (Node 20: the gate). */
export function base64urlPortable(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Everything the edge needs to sign one origin request: the header value, or null when a field cannot be signed. */
export async function signRequest(key: HmacKey, r: SignedRequest): Promise<string | null> {
  const canonical = canonicalString(r);
  if (canonical === null) return null;
  const signature = await hmacBase64url(key, canonical);
  return formatSignatureHeader({ keyId: r.keyId, timestamp: r.timestamp, nonce: r.nonce, nodePort: r.nodePort, cluster: r.cluster, node: r.node, signature });
}
