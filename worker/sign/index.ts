// Signs origin requests for clusters whose snapshot says their origins sit
// behind the node gate (origins mode "gate"). The keys are Worker secrets:
//   EDGELB_GATE_KEYS  JSON {"<cluster>": "<key id>:<secret>"}, one key per cluster
//   EDGELB_GATE_KEY   "<key id>:<secret>", for every cluster not in EDGELB_GATE_KEYS
// Each key is imported into Web Crypto once per isolate; a request pays for
// one HMAC and little else (this runs for every request in gate mode): the
// key is found by the key object's identity, the nonce comes from a counter
// (./nonce), the canonical string is encoded into a reused buffer, and the
// MAC is encoded by the runtime.
import {
  base64url,
  canonicalString,
  formatSignatureHeader,
  importSigningKey,
  parseKeySpec,
  type HmacKey,
  type SigningKey,
} from "../snapshot/signing.ts";
import { NonceSequence } from "./nonce/index.ts";

export { SIGNATURE_HEADER } from "../snapshot/signing.ts";

export interface GateKeyVars {
  EDGELB_GATE_KEY?: string;
  EDGELB_GATE_KEYS?: string;
}

export interface GateKeys {
  byCluster: Map<string, SigningKey>;
  fallback: SigningKey | undefined;
  /** Problems with the vars, logged once; the bad entries are left out (their gates refuse: fail closed). */
  problems: string[];
}

/** Reads the signing keys; messages never quote a secret. */
export function readGateKeys(env: GateKeyVars): GateKeys {
  const problems: string[] = [];
  const byCluster = new Map<string, SigningKey>();
  let fallback: SigningKey | undefined;
  const single = env.EDGELB_GATE_KEY?.trim();
  if (single) {
    const k = parseKeySpec(single);
    if ("error" in k) problems.push(`EDGELB_GATE_KEY: ${k.error}`);
    else fallback = k;
  }
  const raw = env.EDGELB_GATE_KEYS?.trim();
  if (raw) {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = undefined;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      problems.push(`EDGELB_GATE_KEYS is not a JSON object (expected {"cluster": "<key id>:<secret>", ...}); no per-cluster key is used`);
    } else {
      for (const [cluster, spec] of Object.entries(value)) {
        const k = typeof spec === "string" ? parseKeySpec(spec) : { error: "expected a string \"<key id>:<secret>\"" };
        if ("error" in k) problems.push(`EDGELB_GATE_KEYS["${cluster.slice(0, 63)}"]: ${k.error}`);
        else byCluster.set(cluster, k);
      }
    }
  }
  return { byCluster, fallback, problems };
}

/** What the node gate will check, besides the time and nonce the signer adds. */
export interface GateTarget {
  method: string;
  host: string;
  /** Origin-form: path and query. */
  target: string;
  /** The destination Node's name (the snapshot's node name): only that node's gate accepts the request. */
  node: string;
  /** The Service's NodePort the gate forwards to. */
  nodePort: number;
}

export interface SignerOptions {
  now?: () => number;
  nonce?: () => string;
}

const NO_KEY: Promise<undefined> = Promise.resolve(undefined);
const UNSIGNABLE: Promise<null> = Promise.resolve(null);
const encoder = new TextEncoder();

export class GateSigner {
  readonly #keys: GateKeys;
  /**
   * Per key object, its CryptoKey (or the import under way). The keys are read once per isolate and never
   * change in place (a changed secret is a new deployment, a new isolate), so identity is the cache key:
   * no string built per request.
   */
  readonly #imported = new Map<SigningKey, HmacKey | Promise<HmacKey>>();
  readonly #now: () => number;
  readonly #nonce: () => string;
  /**
   * The canonical string's bytes, encoded into one buffer that every request reuses: Web Crypto takes a
   * copy of the data when sign() is called (spec: "get a copy of the bytes held by the data parameter",
   * before the promise), so the next request may overwrite it at once.
   */
  #buffer = new Uint8Array(1024);

  constructor(keys: GateKeys, opts: SignerOptions = {}) {
    this.#keys = keys;
    this.#now = opts.now ?? Date.now;
    if (opts.nonce) this.#nonce = opts.nonce;
    else {
      const sequence = new NonceSequence();
      this.#nonce = () => sequence.next();
    }
  }

  /** The key id a cluster's requests are signed with, or undefined when it has none. */
  keyId(cluster: string): string | undefined {
    return (this.#keys.byCluster.get(cluster) ?? this.#keys.fallback)?.id;
  }

  /**
   * The signature header's value; undefined when the cluster has no key, null
   * when a field cannot be signed (not visible ASCII: the gate would refuse it).
   */
  sign(cluster: string, t: GateTarget): Promise<string | null | undefined> {
    const key = this.#keys.byCluster.get(cluster) ?? this.#keys.fallback;
    if (!key) return NO_KEY;
    const hmac = this.#imported.get(key);
    if (hmac === undefined || hmac instanceof Promise) return this.#signOnceImported(key, cluster, t);
    return this.#sign(hmac, key.id, cluster, t);
  }

  /** The first requests of an isolate: wait for the key's import (one import, however many wait). */
  async #signOnceImported(key: SigningKey, cluster: string, t: GateTarget): Promise<string | null> {
    let pending = this.#imported.get(key);
    if (pending === undefined) {
      const importing = importSigningKey(key.secret);
      pending = importing;
      this.#imported.set(key, importing);
      importing.then(
        (k) => this.#imported.set(key, k),
        // A failed import is tried again by the next request rather than failing every request of the isolate.
        () => this.#imported.delete(key),
      );
    }
    return this.#sign(await pending, key.id, cluster, t);
  }

  #sign(hmac: HmacKey, keyId: string, cluster: string, t: GateTarget): Promise<string | null> {
    const timestamp = Math.floor(this.#now() / 1000);
    const nonce = this.#nonce();
    const canonical = canonicalString({ keyId, timestamp, nonce, method: t.method, host: t.host, target: t.target, cluster, node: t.node, nodePort: t.nodePort });
    if (canonical === null) return UNSIGNABLE;
    // Visible ASCII only (canonicalString checked): one byte per character.
    if (canonical.length > this.#buffer.length) this.#buffer = new Uint8Array(2 ** Math.ceil(Math.log2(canonical.length)));
    const { written } = encoder.encodeInto(canonical, this.#buffer);
    return crypto.subtle
      .sign("HMAC", hmac, this.#buffer.subarray(0, written))
      .then((mac) => formatSignatureHeader({ keyId, timestamp, nonce, nodePort: t.nodePort, cluster, node: t.node, signature: base64url(new Uint8Array(mac)) }));
  }
}
