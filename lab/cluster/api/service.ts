// Service defaulting, allocation and validation as kube-apiserver does it:
// ClusterIP from the service CIDR, NodePorts from 30000-32767 (kept on update
// when omitted, matched by port name), healthCheckNodePort for LoadBalancer +
// externalTrafficPolicy: Local, allocateLoadBalancerNodePorts honoured.
import { isIP } from "node:net";
import type { Obj } from "./selectors.ts";
import { cause, type StatusCause } from "./status.ts";

export interface NodePortRange {
  min: number;
  max: number;
}

export const DEFAULT_NODE_PORT_RANGE: NodePortRange = { min: 30000, max: 32767 };

const TYPES = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
const needsNodePorts = (s: Obj) => s.spec?.type === "NodePort" || (s.spec?.type === "LoadBalancer" && s.spec?.allocateLoadBalancerNodePorts !== false);
const externallyAccessible = (s: Obj) => s.spec?.type === "NodePort" || s.spec?.type === "LoadBalancer";
const needsHealthCheck = (s: Obj) => s.spec?.type === "LoadBalancer" && s.spec?.externalTrafficPolicy === "Local";

export interface ServiceAdmission {
  op: "create" | "update";
  obj: Obj;
  old?: Obj;
  /** Every other Service in the cluster (for allocation). */
  others: Obj[];
  range: NodePortRange;
  /** Picks an unused number in [min, max]; deterministic tests may override. */
  random?: () => number;
}

function usedNodePorts(services: Obj[]): Set<number> {
  const used = new Set<number>();
  for (const s of services) {
    for (const p of s.spec?.ports ?? []) if (p.nodePort) used.add(p.nodePort);
    if (s.spec?.healthCheckNodePort) used.add(s.spec.healthCheckNodePort);
  }
  return used;
}

function usedClusterIPs(services: Obj[]): Set<string> {
  return new Set(services.map((s) => s.spec?.clusterIP).filter((ip) => ip && ip !== "None"));
}

/** Returns the validation failures; fills in defaults and allocations on `obj`. */
export function admitService(a: ServiceAdmission): StatusCause[] {
  const { obj, old } = a;
  const spec: Obj = (obj.spec ??= {});
  const causes: StatusCause[] = [];
  const rand = a.random ?? Math.random;

  spec.type ??= "ClusterIP";
  if (!TYPES.includes(spec.type)) {
    causes.push(cause("spec.type", "FieldValueNotSupported", `Unsupported value: "${spec.type}": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"`));
    return causes;
  }
  spec.sessionAffinity ??= "None";
  spec.ports ??= [];

  // A type change drops the fields that only made sense for the old type.
  if (old && old.spec?.type !== spec.type) {
    if (!needsNodePorts(obj)) {
      for (const p of spec.ports) {
        const was = (old.spec?.ports ?? []).find((o: Obj) => o.name === p.name);
        if (p.nodePort && was && was.nodePort === p.nodePort) delete p.nodePort;
      }
    }
    if (spec.type !== "LoadBalancer") {
      delete spec.allocateLoadBalancerNodePorts;
      delete spec.loadBalancerClass;
    }
    if (!needsHealthCheck(obj) && spec.healthCheckNodePort === old.spec?.healthCheckNodePort) delete spec.healthCheckNodePort;
    if (!externallyAccessible(obj)) delete spec.externalTrafficPolicy;
  }
  if (old && old.spec?.externalTrafficPolicy === "Local" && spec.externalTrafficPolicy !== "Local" && spec.healthCheckNodePort === old.spec?.healthCheckNodePort) {
    delete spec.healthCheckNodePort;
  }

  if (spec.type === "ExternalName") {
    if (!spec.externalName) causes.push(cause("spec.externalName", "FieldValueRequired", "Required value"));
  } else if (spec.ports.length === 0) {
    causes.push(cause("spec.ports", "FieldValueRequired", "Required value"));
  }

  const names = new Set<string>();
  spec.ports.forEach((p: Obj, i: number) => {
    const f = `spec.ports[${i}]`;
    p.protocol ??= "TCP";
    if (!["TCP", "UDP", "SCTP"].includes(p.protocol)) causes.push(cause(`${f}.protocol`, "FieldValueNotSupported", `Unsupported value: "${p.protocol}": supported values: "SCTP", "TCP", "UDP"`));
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) causes.push(cause(`${f}.port`, "FieldValueInvalid", `Invalid value: ${JSON.stringify(p.port)}: must be between 1 and 65535, inclusive`));
    if (spec.ports.length > 1 && !p.name) causes.push(cause(`${f}.name`, "FieldValueRequired", "Required value"));
    if (p.name) {
      if (names.has(p.name)) causes.push(cause(`${f}.name`, "FieldValueDuplicate", `Duplicate value: "${p.name}"`));
      names.add(p.name);
    }
    if (p.targetPort === undefined || p.targetPort === 0 || p.targetPort === "") p.targetPort = p.port;
    if (p.nodePort === 0 || p.nodePort === null) delete p.nodePort;
  });

  // ClusterIP: allocated once, immutable afterwards.
  if (spec.type !== "ExternalName") {
    if (old && old.spec?.clusterIP && (spec.clusterIP === undefined || spec.clusterIP === "")) spec.clusterIP = old.spec.clusterIP;
    if (old && old.spec?.clusterIP && spec.clusterIP !== old.spec.clusterIP) {
      causes.push(cause("spec.clusterIPs[0]", "FieldValueInvalid", `Invalid value: ${JSON.stringify([spec.clusterIP])}: may not change once set`));
    }
    if (!spec.clusterIP) {
      const used = usedClusterIPs(a.others);
      for (let n = 10; ; n++) {
        const ip = `10.96.${Math.floor(n / 254)}.${(n % 254) + 1}`;
        if (!used.has(ip)) {
          spec.clusterIP = ip;
          break;
        }
      }
    } else if (spec.clusterIP !== "None" && isIP(spec.clusterIP) !== 4) {
      causes.push(cause("spec.clusterIPs[0]", "FieldValueInvalid", `Invalid value: "${spec.clusterIP}": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`));
    }
    spec.clusterIPs = [spec.clusterIP];
    spec.ipFamilies ??= ["IPv4"];
    spec.ipFamilyPolicy ??= "SingleStack";
    spec.internalTrafficPolicy ??= "Cluster";
  }

  if (externallyAccessible(obj)) spec.externalTrafficPolicy ??= "Cluster";
  else if (spec.externalTrafficPolicy !== undefined) {
    causes.push(cause("spec.externalTrafficPolicy", "FieldValueInvalid", `Invalid value: "${spec.externalTrafficPolicy}": may only be set for externally-accessible services`));
  }
  if (spec.externalTrafficPolicy !== undefined && !["Cluster", "Local"].includes(spec.externalTrafficPolicy)) {
    causes.push(cause("spec.externalTrafficPolicy", "FieldValueNotSupported", `Unsupported value: "${spec.externalTrafficPolicy}": supported values: "Cluster", "Local"`));
  }

  if (spec.type === "LoadBalancer") spec.allocateLoadBalancerNodePorts ??= true;
  else if (spec.allocateLoadBalancerNodePorts !== undefined) {
    causes.push(cause("spec.allocateLoadBalancerNodePorts", "FieldValueForbidden", "Forbidden: may only be used when `type` is 'LoadBalancer'"));
  }
  if (spec.loadBalancerClass !== undefined && spec.type !== "LoadBalancer") {
    causes.push(cause("spec.loadBalancerClass", "FieldValueForbidden", "Forbidden: may only be used when `type` is 'LoadBalancer'"));
  }
  if (old && old.spec?.type === "LoadBalancer" && spec.type === "LoadBalancer" && old.spec?.loadBalancerClass !== spec.loadBalancerClass) {
    causes.push(cause("spec.loadBalancerClass", "FieldValueInvalid", `Invalid value: ${JSON.stringify(spec.loadBalancerClass ?? null)}: may not change once set`));
  }

  // NodePorts: keep the old allocation (by port name) when the update omits it.
  const others = usedNodePorts(a.others);
  if (old && externallyAccessible(old) && externallyAccessible(obj)) {
    const byName = new Map<string, number>((old.spec?.ports ?? []).filter((p: Obj) => p.nodePort).map((p: Obj) => [p.name ?? "", p.nodePort]));
    const explicit = new Set(spec.ports.map((p: Obj) => p.nodePort).filter(Boolean));
    for (const p of spec.ports) {
      const was = byName.get(p.name ?? "");
      if (!p.nodePort && was && !explicit.has(was)) p.nodePort = was;
    }
  }
  if (old && needsHealthCheck(old) && needsHealthCheck(obj) && !spec.healthCheckNodePort) {
    spec.healthCheckNodePort = old.spec.healthCheckNodePort;
  }

  const inRange = (n: number) => Number.isInteger(n) && n >= a.range.min && n <= a.range.max;
  const rangeText = `provided port is not in the valid range. The range of valid ports is ${a.range.min}-${a.range.max}`;
  const mine = new Map<number, string>(); // nodePort -> protocol of the first user in this Service
  spec.ports.forEach((p: Obj, i: number) => {
    if (!p.nodePort) return;
    const f = `spec.ports[${i}].nodePort`;
    if (!externallyAccessible(obj)) {
      causes.push(cause(f, "FieldValueForbidden", `Forbidden: may not be used when \`type\` is '${spec.type}'`));
    } else if (!inRange(p.nodePort)) {
      causes.push(cause(f, "FieldValueInvalid", `Invalid value: ${p.nodePort}: ${rangeText}`));
    } else if (others.has(p.nodePort)) {
      causes.push(cause(f, "FieldValueInvalid", `Invalid value: ${p.nodePort}: provided port is already allocated`));
    } else if (mine.has(p.nodePort) && mine.get(p.nodePort) === p.protocol) {
      causes.push(cause(f, "FieldValueDuplicate", `Duplicate value: "${p.nodePort}"`));
    }
    mine.set(p.nodePort, p.protocol);
  });

  if (spec.healthCheckNodePort) {
    if (!needsHealthCheck(obj)) {
      causes.push(cause("spec.healthCheckNodePort", "FieldValueInvalid", "Invalid value: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
    } else if (!inRange(spec.healthCheckNodePort)) {
      causes.push(cause("spec.healthCheckNodePort", "FieldValueInvalid", `Invalid value: ${spec.healthCheckNodePort}: ${rangeText}`));
    } else if (others.has(spec.healthCheckNodePort) || mine.has(spec.healthCheckNodePort)) {
      causes.push(cause("spec.healthCheckNodePort", "FieldValueInvalid", `Invalid value: ${spec.healthCheckNodePort}: provided port is already allocated`));
    }
  }
  if (causes.length) return causes;

  const taken = new Set([...others, ...mine.keys()]);
  const allocate = (): number => {
    const size = a.range.max - a.range.min + 1;
    const start = Math.floor(rand() * size);
    for (let k = 0; k < size; k++) {
      const n = a.range.min + ((start + k) % size);
      if (!taken.has(n)) {
        taken.add(n);
        return n;
      }
    }
    throw new Error("range is full");
  };
  try {
    if (needsNodePorts(obj)) {
      // The same port number on two protocols shares one NodePort, like upstream.
      const byPort = new Map<number, number>();
      for (const p of spec.ports) if (p.nodePort) byPort.set(p.port, p.nodePort);
      for (const p of spec.ports) {
        if (p.nodePort) continue;
        p.nodePort = byPort.get(p.port) ?? allocate();
        byPort.set(p.port, p.nodePort);
      }
    }
    if (needsHealthCheck(obj) && !spec.healthCheckNodePort) spec.healthCheckNodePort = allocate();
  } catch {
    causes.push(cause("spec.ports", "FieldValueInvalid", "Internal error: range is full"));
  }
  return causes;
}

/** Validation of what a controller writes through /status. */
export function validateServiceStatus(obj: Obj): StatusCause[] {
  const causes: StatusCause[] = [];
  const ingress = obj.status?.loadBalancer?.ingress ?? [];
  if (!Array.isArray(ingress)) return [cause("status.loadBalancer.ingress", "FieldValueInvalid", "Invalid value: must be a list")];
  ingress.forEach((ing: Obj, i: number) => {
    const f = `status.loadBalancer.ingress[${i}]`;
    if (ing.ip !== undefined && ing.ip !== "" && !isIP(ing.ip)) causes.push(cause(`${f}.ip`, "FieldValueInvalid", `Invalid value: "${ing.ip}": must be a valid IP address`));
    if (ing.hostname !== undefined && ing.hostname !== "") {
      if (isIP(ing.hostname)) causes.push(cause(`${f}.hostname`, "FieldValueInvalid", `Invalid value: "${ing.hostname}": must be a DNS name, not an IP address`));
      else if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(ing.hostname)) {
        causes.push(cause(`${f}.hostname`, "FieldValueInvalid", `Invalid value: "${ing.hostname}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`));
      }
    }
    if (ing.ipMode !== undefined && !ing.ip) causes.push(cause(`${f}.ipMode`, "FieldValueForbidden", "Forbidden: may not be specified when `ip` is not set"));
  });
  return causes;
}
