// Which Services are ours and how each one is served. Pure: the same Service
// object always gives the same verdict, so the controller can re-run it on
// every change (level-triggered) and log only when a verdict changes.
import type { V1Service, V1ServicePort } from "@kubernetes/client-node";
import * as v from "valibot";
import {
  Algorithm,
  Hostname,
  type AffinityName,
  type AlgorithmName,
} from "../../worker/snapshot/schema.ts";
import {
  ANNOTATION_ALGORITHM,
  ANNOTATION_BACKEND_PROTOCOL,
  ANNOTATION_HOSTNAMES,
  ANNOTATION_PORT,
} from "./constants.ts";
import { requestPolicy } from "./request-policy.ts";

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
}

export type ServiceVerdict =
  /** Not a LoadBalancer Service of ours: leave it alone (and clear any status we set). */
  | { kind: "ignored"; reason: string }
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

function isTCP(p: V1ServicePort): boolean {
  return (p.protocol ?? "TCP") === "TCP";
}

function choosePort(svc: V1Service): { port: V1ServicePort } | { error: string } {
  const tcp = (svc.spec?.ports ?? []).filter(isTCP);
  if (tcp.length === 0) return { error: "has no TCP port" };
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

function parseHostnames(svc: V1Service, opts: ServiceOptions): { hostnames: string[] } | { error: string } {
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
  return { hostnames: [...new Set(list)].sort() };
}

export function evaluateService(svc: V1Service, opts: ServiceOptions): ServiceVerdict {
  const notOurs = ownership(svc, opts);
  if (notOurs) return { kind: "ignored", reason: notOurs };
  if (svc.metadata?.deletionTimestamp) return { kind: "ignored", reason: "being deleted" };
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
  const protocol = annotations[ANNOTATION_BACKEND_PROTOCOL]?.trim().toLowerCase();
  if (protocol !== undefined && protocol !== "http" && protocol !== "https") {
    return skip(`${ANNOTATION_BACKEND_PROTOCOL}=${JSON.stringify(protocol)} must be http or https`);
  }
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
  return { kind: "served", spec };
}
