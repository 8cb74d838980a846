// Which Services are ours and how each one is served. Pure: the same Service
// object always gives the same verdict, so the controller can re-run it on
// every change (level-triggered) and log only when a verdict changes.
import type { V1LoadBalancerIngress, V1Service, V1ServicePort } from "@kubernetes/client-node";
import * as v from "valibot";
import {
  Algorithm,
  Hostname,
  formatCidr,
  parseCidr,
  type AffinityName,
  type AlgorithmName,
} from "../../worker/snapshot/schema.ts";
import {
  ANNOTATION_ALGORITHM,
  ANNOTATION_BACKEND_PROTOCOL,
  ANNOTATION_HOSTNAMES,
  ANNOTATION_PORT,
  ANNOTATION_SOURCE_RANGES,
} from "./constants.ts";
import { requestPolicy } from "./request-policy.ts";

/** Something a user should know about how a served Service is served (becomes an Event). */
export interface Notice {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface ServiceOptions {
  /** Our spec.loadBalancerClass. */
  loadBalancerClass: string;
  /** Only Services with our class; class-less ones are left to someone else. */
  onlyClass: boolean;
  /** Hostnames default to <name>.<namespace>.<defaultDomain> when set. */
  defaultDomain?: string | undefined;
}

/** What we need to serve one Service; hostnames may still lose a conflict. */
export interface ServiceSpecForEdge {
  namespace: string;
  name: string;
  hostnames: string[];
  port: { name?: string; port: number; nodePort: number };
  scheme: "http" | "https";
  trafficPolicy: "Cluster" | "Local";
  healthCheckNodePort?: number;
  algorithm?: AlgorithmName;
  affinity?: AffinityName;
  /** edgelb.dev/retry-non-idempotent: "true". */
  retryNonIdempotent?: boolean;
  /** edgelb.dev/response-timeout, in ms. */
  responseTimeoutMs?: number;
  /** Normalised loadBalancerSourceRanges; absent = open to every client. */
  sourceRanges?: string[];
  /** The hostnames came from the annotation (not --default-domain): admins' hostname rules apply. */
  annotatedHostnames?: boolean;
  /** Dropped ports, wildcard-only hostnames, …: told once as Events. */
  notices?: Notice[];
}

export type ServiceVerdict =
  /**
   * Not a LoadBalancer Service of ours: leave it alone (and clear any status we set).
   * `foreign`: a class-less Service another controller already serves (its ingress
   * holds entries edgelb never writes); says who seems to own it and how to hand it over.
   */
  | { kind: "ignored"; reason: string; foreign?: string }
  /** Ours but cannot be served; the reason is for logs, Events and conditions. */
  | { kind: "skipped"; reason: string }
  | { kind: "served"; spec: ServiceSpecForEdge };

export function serviceId(svc: { metadata?: { namespace?: string; name?: string } }): string {
  return `${svc.metadata?.namespace ?? "default"}/${svc.metadata?.name ?? ""}`;
}

/** Is this Service a LoadBalancer of our class (or class-less, when we take those)? */
export function ownership(svc: V1Service, opts: ServiceOptions): string | undefined {
  if (svc.spec?.type !== "LoadBalancer") return `type is ${svc.spec?.type ?? "ClusterIP"}, not LoadBalancer`;
  const cls = svc.spec.loadBalancerClass;
  if (cls === undefined || cls === null || cls === "") {
    return opts.onlyClass ? "has no loadBalancerClass and --only-class is set" : undefined;
  }
  if (cls !== opts.loadBalancerClass) return `loadBalancerClass is ${cls}`;
  return undefined;
}

/**
 * Which ingress entries edgelb writes: `hostname`-only ones. MetalLB, kube-vip,
 * k3s ServiceLB, Cilium and OpenELB write `ip` entries (with ipMode/ports on
 * newer ones); edgelb never does, since the edge has no IP of the Service's own.
 * Derived from the entry itself, so it survives restarts and flag changes.
 */
export function isEdgelbIngress(i: V1LoadBalancerIngress): boolean {
  return !!i.hostname && !i.ip && !i.ipMode && !(i.ports && i.ports.length > 0);
}

const OWNER_HINTS: [prefix: string, owner: string][] = [
  ["metallb.universe.tf/", "MetalLB"],
  ["metallb.io/", "MetalLB"],
  ["kube-vip.io/", "kube-vip"],
  ["svccontroller.k3s.cattle.io/", "k3s ServiceLB"],
  ["lbipam.cilium.io/", "Cilium LB IPAM"],
  ["io.cilium/", "Cilium LB IPAM"],
  ["purelb.io/", "PureLB"],
  ["eip.openelb.kubesphere.io/", "OpenELB"],
];

/** The controller a Service's annotations point to, when they do. */
export function guessOwner(svc: V1Service): string | undefined {
  const keys = Object.keys(svc.metadata?.annotations ?? {});
  for (const [prefix, owner] of OWNER_HINTS) if (keys.some((k) => k.startsWith(prefix))) return owner;
  return undefined;
}

function foreignOwner(svc: V1Service, opts: ServiceOptions): string | undefined {
  const theirs = (svc.status?.loadBalancer?.ingress ?? []).filter((i) => !isEdgelbIngress(i));
  if (theirs.length === 0) return undefined;
  const shown = theirs.slice(0, 3).map((i) => String(i.ip ?? i.hostname ?? "?").slice(0, 64));
  const what = shown.join(", ") + (theirs.length > 3 ? ` and ${theirs.length - 3} more` : "");
  const owner = guessOwner(svc);
  const who = owner ?? "another load balancer controller (MetalLB, kube-vip or k3s ServiceLB?)";
  return (
    `status.loadBalancer.ingress already holds ${what}, which edgelb did not write: the Service seems to belong to ${who}, so edgelb leaves it alone. ` +
    `To serve it through edgelb, create it with spec.loadBalancerClass: ${opts.loadBalancerClass} (the field cannot be changed later)` +
    (owner ? ` and have ${owner} release it` : "")
  );
}

function isTCP(p: V1ServicePort): boolean {
  return (p.protocol ?? "TCP") === "TCP";
}

function choosePort(svc: V1Service): { port: V1ServicePort } | { error: string } {
  const tcp = (svc.spec?.ports ?? []).filter(isTCP);
  if (tcp.length === 0) {
    const others = (svc.spec?.ports ?? []).map(showPort).join(", ");
    return { error: `has no TCP port (${others || "no ports"}): the edge serves HTTP over TCP only` };
  }
  const wanted = svc.metadata?.annotations?.[ANNOTATION_PORT]?.trim();
  if (wanted !== undefined && wanted !== "") {
    const byNumber = /^\d+$/.test(wanted) ? tcp.find((p) => p.port === Number(wanted)) : undefined;
    const found = byNumber ?? tcp.find((p) => p.name === wanted);
    if (!found) {
      const known = tcp.map((p) => (p.name ? `${p.name}(${p.port})` : String(p.port))).join(", ");
      return { error: `${ANNOTATION_PORT}=${JSON.stringify(wanted)} matches no TCP port (have ${known})` };
    }
    return { port: found };
  }
  if (tcp.length === 1) return { port: tcp[0]! };
  const chosen = tcp.find((p) => p.name === "http") ?? tcp.find((p) => p.port === 80);
  if (!chosen) {
    return { error: `has ${tcp.length} TCP ports, none named "http" or numbered 80; set ${ANNOTATION_PORT}` };
  }
  return { port: chosen };
}

function showPort(p: V1ServicePort): string {
  return `${p.name ? `${p.name} ` : ""}${p.port}/${p.protocol ?? "TCP"}`;
}

export const MAX_SOURCE_RANGES = 1000;

/** spec.loadBalancerSourceRanges, else the legacy annotation; normalised, sorted. */
function parseSourceRanges(svc: V1Service): { ranges?: string[] } | { error: string } {
  const fromSpec = svc.spec?.loadBalancerSourceRanges ?? [];
  const raw = fromSpec.length > 0 ? fromSpec : (svc.metadata?.annotations?.[ANNOTATION_SOURCE_RANGES] ?? "").split(",");
  const where = fromSpec.length > 0 ? "spec.loadBalancerSourceRanges" : ANNOTATION_SOURCE_RANGES;
  const list = raw.map((r) => r.trim()).filter((r) => r !== "");
  if (list.length === 0) return {};
  const bad = list.filter((r) => parseCidr(r) === null);
  if (bad.length > 0) {
    return { error: `${where} has invalid CIDR(s) ${bad.map((r) => JSON.stringify(r)).join(", ")}: not serving it open to every client instead` };
  }
  const ranges = [...new Set(list.map((r) => formatCidr(parseCidr(r)!)))].sort();
  // The snapshot schema's bound: one Service must not make the whole snapshot invalid.
  if (ranges.length > MAX_SOURCE_RANGES) return { error: `${where} has ${ranges.length} ranges; at most ${MAX_SOURCE_RANGES} are supported` };
  return { ranges };
}

/** The backend protocol a port's appProtocol asks for (used when the annotation is absent). */
function appProtocolScheme(port: V1ServicePort): { scheme?: "http" | "https" } | { error: string } {
  const ap = port.appProtocol?.trim().toLowerCase();
  if (!ap) return {};
  if (ap === "http" || ap === "kubernetes.io/ws") return { scheme: "http" };
  if (ap === "https" || ap === "kubernetes.io/wss") return { scheme: "https" };
  if (ap === "kubernetes.io/h2c") {
    return {
      error: `port ${port.name ?? port.port} has appProtocol kubernetes.io/h2c (HTTP/2 over cleartext), which the edge cannot speak to nodes (it sends HTTP/1.1); set ${ANNOTATION_BACKEND_PROTOCOL}: http if the backend also accepts HTTP/1.1`,
    };
  }
  return {}; // another protocol name (e.g. a vendor's): the default applies
}

function parseHostnames(svc: V1Service, opts: ServiceOptions): { hostnames: string[]; annotated: boolean } | { error: string } {
  const raw = svc.metadata?.annotations?.[ANNOTATION_HOSTNAMES];
  const ns = svc.metadata?.namespace ?? "default";
  const name = svc.metadata?.name ?? "";
  let list: string[];
  if (raw !== undefined && raw.trim() !== "") {
    list = raw.split(",").map((h) => h.trim().toLowerCase().replace(/\.$/, "")).filter((h) => h !== "");
  } else if (opts.defaultDomain) {
    list = [`${name}.${ns}.${opts.defaultDomain}`.toLowerCase()];
  } else {
    return { error: `no hostname: set the ${ANNOTATION_HOSTNAMES} annotation or --default-domain` };
  }
  const bad = list.filter((h) => !v.is(Hostname, h));
  if (bad.length > 0) {
    return { error: `${ANNOTATION_HOSTNAMES} has invalid hostname(s): ${bad.map((h) => JSON.stringify(h)).join(", ")}` };
  }
  if (list.length === 0) return { error: `${ANNOTATION_HOSTNAMES} is empty` };
  return { hostnames: [...new Set(list)].sort(), annotated: raw !== undefined && raw.trim() !== "" };
}

export function evaluateService(svc: V1Service, opts: ServiceOptions): ServiceVerdict {
  const notOurs = ownership(svc, opts);
  if (notOurs) return { kind: "ignored", reason: notOurs };
  if (svc.metadata?.deletionTimestamp) return { kind: "ignored", reason: "being deleted" };
  const cls = svc.spec?.loadBalancerClass;
  if (!cls) {
    // Class-less Services are everybody's: one another controller already serves stays its.
    const foreign = foreignOwner(svc, opts);
    if (foreign) return { kind: "ignored", reason: foreign, foreign: guessOwner(svc) ?? "another controller" };
  }
  const skip = (reason: string): ServiceVerdict => ({ kind: "skipped", reason });

  const hosts = parseHostnames(svc, opts);
  if ("error" in hosts) return skip(hosts.error);
  const chosen = choosePort(svc);
  if ("error" in chosen) return skip(chosen.error);
  const port = chosen.port;
  if (!port.nodePort) {
    const why = svc.spec?.allocateLoadBalancerNodePorts === false ? " (allocateLoadBalancerNodePorts is false)" : "";
    return skip(`port ${port.name ?? port.port} has no nodePort${why}`);
  }

  const annotations = svc.metadata?.annotations ?? {};
  let protocol = annotations[ANNOTATION_BACKEND_PROTOCOL]?.trim().toLowerCase();
  if (protocol !== undefined && protocol !== "http" && protocol !== "https") {
    return skip(`${ANNOTATION_BACKEND_PROTOCOL}=${JSON.stringify(protocol)} must be http or https`);
  }
  if (protocol === undefined) {
    const fromPort = appProtocolScheme(port);
    if ("error" in fromPort) return skip(fromPort.error);
    protocol = fromPort.scheme;
  }
  const ranges = parseSourceRanges(svc);
  if ("error" in ranges) return skip(ranges.error);
  const algorithm = annotations[ANNOTATION_ALGORITHM]?.trim().toLowerCase();
  if (algorithm !== undefined && !v.is(Algorithm, algorithm)) {
    return skip(`${ANNOTATION_ALGORITHM}=${JSON.stringify(algorithm)} must be one of ${Algorithm.options.join(", ")}`);
  }
  const request = requestPolicy(annotations);
  if ("error" in request) return skip(request.error);

  const local = svc.spec?.externalTrafficPolicy === "Local";
  const spec: ServiceSpecForEdge = {
    namespace: svc.metadata?.namespace ?? "default",
    name: svc.metadata?.name ?? "",
    hostnames: hosts.hostnames,
    port: { ...(port.name ? { name: port.name } : {}), port: port.port, nodePort: port.nodePort },
    scheme: protocol === "https" ? "https" : "http",
    trafficPolicy: local ? "Local" : "Cluster",
  };
  // Without a healthCheckNodePort (unusual) Local endpoints follow node health alone.
  if (local && svc.spec?.healthCheckNodePort) spec.healthCheckNodePort = svc.spec.healthCheckNodePort;
  if (algorithm) spec.algorithm = algorithm as AlgorithmName;
  if (svc.spec?.sessionAffinity === "ClientIP") spec.affinity = "client-ip";
  Object.assign(spec, request);
  if (ranges.ranges) spec.sourceRanges = ranges.ranges;
  if (hosts.annotated) spec.annotatedHostnames = true;
  const notices: Notice[] = [];
  const dropped = (svc.spec?.ports ?? []).filter((p) => p !== port);
  if (dropped.length > 0) {
    notices.push({
      type: "Warning",
      reason: "PortNotServed",
      message: `only port ${showPort(port)} is served at the edge; not served: ${dropped.map(showPort).join(", ")}`,
    });
  }
  if (notices.length > 0) spec.notices = notices;
  return { kind: "served", spec };
}
