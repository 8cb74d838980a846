// Signs origin requests for clusters whose snapshot says their origins sit
// behind the node gate (origins mode "gate"). The keys are Worker secrets:
//   EDGELB_GATE_KEYS  JSON {"<cluster>": "<key id>:<secret>"}, one key per cluster
//   EDGELB_GATE_KEY   "<key id>:<secret>", for every cluster not in EDGELB_GATE_KEYS
// Each key is imported into Web Crypto once per isolate; a request pays for
// one HMAC and little else (this runs for every request in gate mode): the
// key is found by the key object's identity, the nonce comes from a counter
// (./nonce), the fields that do not change per request (key id, cluster,
// node, NodePort) are checked and spelled once per route origin, the
// timestamp once per second, the canonical string is encoded into a reused
// buffer, and the MAC is encoded by the runtime. The bytes signed and the
// header are exactly canonicalString's and formatSignatureHeader's
// (../snapshot/signing.ts, the gate's side): a property test holds them equal.
import {
  base64url,
  CLUSTER_NAME,
  importSigningKey,
  NODE_NAME,
  parseKeySpec,
  SIGNATURE_VERSION,
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
  /**
   * The route origin the request goes to (a RouteOrigin): its identity keys the signer's cache of the
   * destination's checked, fixed fields (cluster, node, NodePort), so they are checked and spelled once
   * per origin, not per request. Without it they are checked every time.
   */
  origin?: object;
}

export interface SignerOptions {
  now?: () => number;
  nonce?: () => string;
}

const NO_KEY: Promise<undefined> = Promise.resolve(undefined);
const UNSIGNABLE: Promise<null> = Promise.resolve(null);
const encoder = new TextEncoder();
/** What canonicalString asks of every field (signing.ts): visible ASCII, at least one character. */
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/** A key once imported, with its part of the canonical string and of the header spelled once. */
interface ImportedKey {
  hmac: HmacKey;
  id: string;
  /** The canonical string up to the timestamp: "edgelb-gate", the version and the key id. */
  canonicalHead: string;
  /** The header up to the timestamp: "v3;k=<id>;t=". */
  headerHead: string;
}

/**
 * A destination's fixed fields, checked and spelled once per route origin and key (an origin whose
 * fields cannot be signed is not cached: the gate would refuse it whatever the request).
 */
interface Destination {
  key: ImportedKey;
  cluster: string;
  node: string;
  nodePort: number;
  /** The canonical string after the target: cluster, node and NodePort, length-prefixed. */
  canonicalTail: string;
  /** The header between the nonce and the MAC: ";p=…;c=…;d=…;s=". */
  headerMiddle: string;
}

/** `\n<length>:<field>`: one field of the canonical string (signing.ts, canonicalString). */
const field = (f: string): string => `\n${f.length}:${f}`;

export class GateSigner {
  readonly #keys: GateKeys;
  /**
   * Per key object, its imported key (or the import under way). The keys are read once per isolate and
   * never change in place (a changed secret is a new deployment, a new isolate), so identity is the cache
   * key: no string built per request.
   */
  readonly #imported = new Map<SigningKey, ImportedKey | Promise<ImportedKey>>();
  /** Per route origin, its destination's fixed fields (they die with the route table that holds the origin). */
  readonly #destinations = new WeakMap<object, Destination>();
  readonly #now: () => number;
  readonly #nonce: () => string;
  /** Only nonces from elsewhere (tests) are checked; the sequence's are base64url by construction. */
  readonly #checkNonce: boolean;
  /** The timestamp's fields for the current second: a new string only when the second changes. */
  #second = -1;
  #secondField = "";
  #secondText = "";
  /**
   * The canonical string's bytes, encoded into one buffer that every request reuses: Web Crypto takes a
   * copy of the data when sign() is called (spec: "get a copy of the bytes held by the data parameter",
   * before the promise), so the next request may overwrite it at once.
   */
  #buffer = new Uint8Array(1024);

  constructor(keys: GateKeys, opts: SignerOptions = {}) {
    this.#keys = keys;
    this.#now = opts.now ?? Date.now;
    this.#checkNonce = opts.nonce !== undefined;
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
    const imported = this.#imported.get(key);
    if (imported === undefined || imported instanceof Promise) return this.#signOnceImported(key, cluster, t);
    return this.#sign(imported, cluster, t);
  }

  /** The first requests of an isolate: wait for the key's import (one import, however many wait). */
  async #signOnceImported(key: SigningKey, cluster: string, t: GateTarget): Promise<string | null> {
    let pending = this.#imported.get(key);
    if (pending === undefined) {
      const id = key.id;
      const importing = importSigningKey(key.secret).then((hmac): ImportedKey => ({
        hmac,
        id,
        canonicalHead: `edgelb-gate${field(SIGNATURE_VERSION)}${field(id)}`,
        headerHead: `${SIGNATURE_VERSION};k=${id};t=`,
      }));
      pending = importing;
      this.#imported.set(key, importing);
      importing.then(
        (k) => this.#imported.set(key, k),
        // A failed import is tried again by the next request rather than failing every request of the isolate.
        () => this.#imported.delete(key),
      );
    }
    return this.#sign(await pending, cluster, t);
  }

  /** The destination's fixed fields for this key, from the origin's cache entry when it has one. */
  #destination(key: ImportedKey, cluster: string, t: GateTarget): Destination | null {
    const origin = t.origin;
    if (origin !== undefined) {
      const d = this.#destinations.get(origin);
      // Compared with the request, so a reused or changed origin object never signs stale fields.
      if (d !== undefined && d.key === key && d.cluster === cluster && d.node === t.node && d.nodePort === t.nodePort) return d;
    }
    const d = this.#checkDestination(key, cluster, t);
    if (origin !== undefined && d !== null) this.#destinations.set(origin, d);
    return d;
  }

  /** canonicalString's checks of the fixed fields (signing.ts), done once per destination. */
  #checkDestination(key: ImportedKey, cluster: string, t: GateTarget): Destination | null {
    const { node, nodePort } = t;
    if (!Number.isInteger(nodePort) || nodePort < 1 || nodePort > 65535) return null;
    if (!NODE_NAME.test(node) || !CLUSTER_NAME.test(cluster)) return null;
    const port = String(nodePort);
    return {
      key,
      cluster,
      node,
      nodePort,
      canonicalTail: `${field(cluster)}${field(node)}${field(port)}`,
      headerMiddle: `;p=${port};c=${cluster};d=${node};s=`,
    };
  }

  #sign(key: ImportedKey, cluster: string, t: GateTarget): Promise<string | null> {
    const destination = this.#destination(key, cluster, t);
    if (destination === null) return UNSIGNABLE;
    const { method, host, target } = t;
    // The fields the client chose, checked per request as canonicalString checks them.
    if (!VISIBLE_ASCII.test(method) || !VISIBLE_ASCII.test(host) || !VISIBLE_ASCII.test(target)) return UNSIGNABLE;
    const second = Math.floor(this.#now() / 1000);
    if (second !== this.#second) {
      if (!Number.isSafeInteger(second) || second < 0) return UNSIGNABLE;
      this.#second = second;
      this.#secondText = String(second);
      this.#secondField = field(this.#secondText);
    }
    const nonce = this.#nonce();
    if (this.#checkNonce && !VISIBLE_ASCII.test(nonce)) return UNSIGNABLE;
    // The same bytes as canonicalString (a property test holds them equal), from the parts spelled once.
    const canonical =
      key.canonicalHead + this.#secondField + field(nonce) + field(method) + field(host) + field(target) + destination.canonicalTail;
    // Visible ASCII only (checked): one byte per character.
    if (canonical.length > this.#buffer.length) this.#buffer = new Uint8Array(2 ** Math.ceil(Math.log2(canonical.length)));
    const { written } = encoder.encodeInto(canonical, this.#buffer);
    // The header as formatSignatureHeader writes it (the same property test).
    const head = key.headerHead + this.#secondText + ";n=" + nonce + destination.headerMiddle;
    return crypto.subtle.sign("HMAC", key.hmac, this.#buffer.subarray(0, written)).then((mac) => head + base64url(new Uint8Array(mac)));
  }
}
