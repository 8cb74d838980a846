// Signs origin requests for clusters whose snapshot says their origins sit
// behind the node gate (origins mode "gate"). The keys are Worker secrets:
//   EDGELB_GATE_KEYS  JSON {"<cluster>": "<key id>:<secret>"}, one key per cluster
//   EDGELB_GATE_KEY   "<key id>:<secret>", for every cluster not in EDGELB_GATE_KEYS
// Each key is imported into Web Crypto once per isolate (a CryptoKey per key
// id, shared by clusters using the same key); a request pays for one HMAC.
import {
  importSigningKey,
  newNonce,
  parseKeySpec,
  signRequest,
  type HmacKey,
  type SigningKey,
} from "../snapshot/signing.ts";

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

export class GateSigner {
  readonly #keys: GateKeys;
  readonly #imported = new Map<string, Promise<HmacKey>>();
  readonly #now: () => number;
  readonly #nonce: () => string;

  constructor(keys: GateKeys, opts: SignerOptions = {}) {
    this.#keys = keys;
    this.#now = opts.now ?? Date.now;
    this.#nonce = opts.nonce ?? newNonce;
  }

  /** The key id a cluster's requests are signed with, or undefined when it has none. */
  keyId(cluster: string): string | undefined {
    return (this.#keys.byCluster.get(cluster) ?? this.#keys.fallback)?.id;
  }

  /**
   * The signature header's value; undefined when the cluster has no key, null
   * when a field cannot be signed (not visible ASCII: the gate would refuse it).
   */
  async sign(cluster: string, t: GateTarget): Promise<string | null | undefined> {
    const key = this.#keys.byCluster.get(cluster) ?? this.#keys.fallback;
    if (!key) return undefined;
    // Keyed by id and secret: two clusters sharing a key share one CryptoKey, a changed secret gets a new one.
    const cacheKey = `${key.id}:${key.secret}`;
    let crypto = this.#imported.get(cacheKey);
    if (!crypto) {
      crypto = importSigningKey(key.secret);
      this.#imported.set(cacheKey, crypto);
    }
    return signRequest(await crypto, {
      keyId: key.id,
      timestamp: Math.floor(this.#now() / 1000),
      nonce: this.#nonce(),
      method: t.method,
      host: t.host,
      target: t.target,
      cluster,
      node: t.node,
      nodePort: t.nodePort,
    });
  }
}
