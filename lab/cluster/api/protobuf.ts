// kubectl sends built-in kinds it builds itself (`kubectl create deployment`,
// `create namespace`…) as Kubernetes protobuf: "k8s\0" + runtime.Unknown
// wrapping the object's generated.proto message. This decodes that envelope
// and the messages of the kinds kubectl creates that way, by the upstream
// field numbers, into the JSON object the rest of the server handles. A
// field it does not know is a clear 415, never a silent drop.
import type { Obj } from "./selectors.ts";
import { errors } from "./status.ts";

export const PROTOBUF = "application/vnd.kubernetes.protobuf";
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** int0/bool0: Go non-pointer fields, always written; their zero value means unset. */
type Kind = "string" | "int" | "int0" | "bool" | "bool0" | "time" | "intOrString" | "bytes";
type Spec = [name: string, kind: Kind | Message | "map" | "quantityMap", repeated?: boolean];
interface Message {
  [field: number]: Spec;
}

const TYPE_META: Message = { 1: ["apiVersion", "string"], 2: ["kind", "string"] };
const UNKNOWN: Message = { 1: ["typeMeta", TYPE_META], 2: ["raw", "bytes"], 3: ["contentEncoding", "string"], 4: ["contentType", "string"] };
const OWNER_REF: Message = { 1: ["kind", "string"], 3: ["name", "string"], 4: ["uid", "string"], 5: ["apiVersion", "string"], 6: ["controller", "bool"], 7: ["blockOwnerDeletion", "bool"] };
const OBJECT_META: Message = {
  1: ["name", "string"],
  2: ["generateName", "string"],
  3: ["namespace", "string"],
  5: ["uid", "string"],
  6: ["resourceVersion", "string"],
  7: ["generation", "int0"],
  8: ["creationTimestamp", "time"],
  11: ["labels", "map"],
  12: ["annotations", "map"],
  13: ["ownerReferences", OWNER_REF, true],
  14: ["finalizers", "string", true],
};
const REQUIREMENT: Message = { 1: ["key", "string"], 2: ["operator", "string"], 3: ["values", "string", true] };
const LABEL_SELECTOR: Message = { 1: ["matchLabels", "map"], 2: ["matchExpressions", REQUIREMENT, true] };
const CONTAINER_PORT: Message = { 1: ["name", "string"], 2: ["hostPort", "int0"], 3: ["containerPort", "int"], 4: ["protocol", "string"], 5: ["hostIP", "string"] };
const ENV_VAR: Message = { 1: ["name", "string"], 2: ["value", "string"] };
const RESOURCES: Message = { 1: ["limits", "quantityMap"], 2: ["requests", "quantityMap"] };
const CONTAINER: Message = {
  1: ["name", "string"],
  2: ["image", "string"],
  3: ["command", "string", true],
  4: ["args", "string", true],
  5: ["workingDir", "string"],
  6: ["ports", CONTAINER_PORT, true],
  7: ["env", ENV_VAR, true],
  8: ["resources", RESOURCES],
  13: ["terminationMessagePath", "string"],
  14: ["imagePullPolicy", "string"],
  20: ["terminationMessagePolicy", "string"],
};
const POD_SPEC: Message = {
  2: ["containers", CONTAINER, true],
  3: ["restartPolicy", "string"],
  4: ["terminationGracePeriodSeconds", "int"],
  6: ["dnsPolicy", "string"],
  7: ["nodeSelector", "map"],
  8: ["serviceAccountName", "string"],
  10: ["nodeName", "string"],
  19: ["schedulerName", "string"],
};
const POD_TEMPLATE: Message = { 1: ["metadata", OBJECT_META], 2: ["spec", POD_SPEC] };
const ROLLING: Message = { 1: ["maxUnavailable", "intOrString"], 2: ["maxSurge", "intOrString"] };
const STRATEGY: Message = { 1: ["type", "string"], 2: ["rollingUpdate", ROLLING] };
const EMPTY: Message = {};
// k8s.io/apimachinery meta/v1 generated.proto: what `kubectl drain` (an Eviction) and `kubectl delete` send.
const DELETE_OPTIONS: Message = {
  1: ["gracePeriodSeconds", "int"],
  2: ["preconditions", { 1: ["uid", "string"], 2: ["resourceVersion", "string"] }],
  3: ["orphanDependents", "bool"],
  4: ["propagationPolicy", "string"],
  5: ["dryRun", "string", true],
  6: ["ignoreStoreReadErrorWithClusterBreakingPotential", "bool"],
};

/** The messages this server decodes, by apiVersion/kind. */
const KINDS: Record<string, Message> = {
  "apps/v1/Deployment": {
    1: ["metadata", OBJECT_META],
    2: [
      "spec",
      {
        1: ["replicas", "int"],
        2: ["selector", LABEL_SELECTOR],
        3: ["template", POD_TEMPLATE],
        4: ["strategy", STRATEGY],
        5: ["minReadySeconds", "int0"],
        6: ["revisionHistoryLimit", "int"],
        7: ["paused", "bool0"],
        9: ["progressDeadlineSeconds", "int"],
      },
    ],
    3: ["status", EMPTY],
  },
  // kubectl create service clusterip|nodeport|loadbalancer|externalname (k8s.io/api/core/v1 generated.proto).
  "v1/Service": {
    1: ["metadata", OBJECT_META],
    2: [
      "spec",
      {
        1: ["ports", { 1: ["name", "string"], 2: ["protocol", "string"], 3: ["port", "int"], 4: ["targetPort", "intOrString"], 5: ["nodePort", "int0"], 6: ["appProtocol", "string"] }, true],
        2: ["selector", "map"],
        3: ["clusterIP", "string"],
        4: ["type", "string"],
        5: ["externalIPs", "string", true],
        7: ["sessionAffinity", "string"],
        8: ["loadBalancerIP", "string"],
        9: ["loadBalancerSourceRanges", "string", true],
        10: ["externalName", "string"],
        11: ["externalTrafficPolicy", "string"],
        12: ["healthCheckNodePort", "int0"],
        13: ["publishNotReadyAddresses", "bool0"],
        17: ["ipFamilyPolicy", "string"],
        18: ["clusterIPs", "string", true],
        19: ["ipFamilies", "string", true],
        20: ["allocateLoadBalancerNodePorts", "bool"],
        21: ["loadBalancerClass", "string"],
        22: ["internalTrafficPolicy", "string"],
        23: ["trafficDistribution", "string"],
      },
    ],
    3: ["status", EMPTY],
  },
  "v1/Namespace": { 1: ["metadata", OBJECT_META], 2: ["spec", EMPTY], 3: ["status", EMPTY] },
  "v1/Pod": { 1: ["metadata", OBJECT_META], 2: ["spec", POD_SPEC], 3: ["status", EMPTY] },
  "policy/v1/Eviction": { 1: ["metadata", OBJECT_META], 2: ["deleteOptions", DELETE_OPTIONS] },
  "v1/DeleteOptions": DELETE_OPTIONS,
  "meta.k8s.io/v1/DeleteOptions": DELETE_OPTIONS,
};

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error("truncated varint");
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error("varint too long");
    }
  }
  bytes(): Buffer {
    const n = this.varint();
    if (this.pos + n > this.buf.length) throw new Error("truncated field");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.bytes();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

const toInt = (n: number) => (n > 2 ** 63 ? n - 2 ** 64 : n);

function decodeMessage(buf: Buffer, msg: Message, path: string): Obj {
  const r = new Reader(buf);
  const out: Obj = {};
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    const spec = msg[field];
    if (!spec) {
      // Go's generated marshallers write every non-pointer field, set or not: zero values say nothing.
      if (wire === 2 && r.bytes().length === 0) continue;
      if (wire === 0 && r.varint() === 0) continue;
      throw errors.unsupportedMediaType(`the simulated API server cannot decode protobuf field ${path || "<root>"}#${field}; send JSON instead (kubectl: apply -f with a manifest)`);
    }
    const [name, kind, repeated] = spec;
    const p = path ? `${path}.${name}` : name;
    let value: unknown;
    if (kind === "int" || kind === "int0") {
      value = toInt(r.varint());
      if (kind === "int0" && value === 0) continue;
    } else if (kind === "bool" || kind === "bool0") {
      value = r.varint() !== 0;
      if (kind === "bool0" && value === false) continue;
    }
    else {
      const b = r.bytes();
      if (kind === "string") {
        value = b.toString("utf8");
        if (value === "" && !repeated) continue; // a Go string's zero value: unset
      }
      else if (kind === "bytes") value = b;
      else if (kind === "time") {
        const t = decodeMessage(b, { 1: ["seconds", "int"], 2: ["nanos", "int"] }, p);
        value = t.seconds ? new Date(t.seconds * 1000).toISOString().replace(/\.\d+Z$/, "Z") : null;
      } else if (kind === "intOrString") {
        const v = decodeMessage(b, { 1: ["type", "int"], 2: ["intVal", "int"], 3: ["strVal", "string"] }, p);
        value = v.type === 1 ? (v.strVal ?? "") : (v.intVal ?? 0);
      } else if (kind === "map" || kind === "quantityMap") {
        const e = decodeMessage(b, { 1: ["key", "string"], 2: kind === "map" ? ["value", "string"] : ["value", { 1: ["string", "string"] }] }, p);
        const m = (out[name] ??= {}) as Obj;
        m[e.key ?? ""] = kind === "map" ? (e.value ?? "") : (e.value?.string ?? "");
        continue;
      } else value = decodeMessage(b, kind, p);
    }
    if (repeated) ((out[name] ??= []) as unknown[]).push(value);
    else out[name] = value;
  }
  return out;
}

/** Decodes a protobuf request body ("k8s\0" + runtime.Unknown) into a JSON object. */
export function decodeProtobuf(body: Buffer): Obj {
  if (!body.subarray(0, 4).equals(MAGIC)) throw errors.badRequest("protobuf body without the k8s\\0 prefix");
  let unknown: Obj;
  try {
    unknown = decodeMessage(body.subarray(4), UNKNOWN, "");
  } catch (e) {
    if ((e as { code?: number }).code) throw e;
    throw errors.badRequest(`the object provided is unrecognized: ${(e as Error).message}`);
  }
  const apiVersion = unknown.typeMeta?.apiVersion ?? "";
  const kind = unknown.typeMeta?.kind ?? "";
  const msg = KINDS[`${apiVersion}/${kind}`];
  if (!msg) throw errors.unsupportedMediaType(`the simulated API server decodes protobuf only for ${Object.keys(KINDS).join(", ")}, not ${apiVersion}/${kind}; send JSON instead`);
  try {
    return { apiVersion, kind, ...decodeMessage(unknown.raw ?? Buffer.alloc(0), msg, "") };
  } catch (e) {
    if ((e as { code?: number }).code) throw e;
    throw errors.badRequest(`the object provided is unrecognized: ${(e as Error).message}`);
  }
}
