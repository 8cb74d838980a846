// Which nodes may be load balancer backends, and at which address. Mirrors the
// upstream service controller (k8s.io/cloud-provider, ≥1.30): Ready and
// cordon are deliberately NOT filters — health checks decide that.
import type { V1Node } from "@kubernetes/client-node";
import * as v from "valibot";
import { NodeAddress, cidrContains, isIPLiteral, isIPv4, isIPv6, parseCidr, parseIP, type Cidr } from "../../worker/snapshot/schema.ts";
import { ANNOTATION_NODE_ADDRESS, LABEL_EXCLUDE_FROM_LB, TAINT_TO_BE_DELETED } from "./constants.ts";

export type AddressType = "ExternalIP" | "InternalIP" | "Hostname" | "ExternalDNS" | "InternalDNS";
export const ADDRESS_TYPES: readonly AddressType[] = ["ExternalIP", "InternalIP", "Hostname", "ExternalDNS", "InternalDNS"];
export const DEFAULT_ADDRESS_PREFERENCE: readonly AddressType[] = ["ExternalIP", "InternalIP"];

/**
 * Where the agent probes a node (kube-proxy's healthz, healthCheckNodePorts, the node gate): a list
 * of address types, first match wins, else the published address (also the fallback when nothing
 * answers there: health/table.ts); or "published" (the address the edge connects to). InternalIP first because kube-proxy in nftables mode (GA in 1.33), or with
 * --nodeport-addresses primary, serves NodePorts and healthCheckNodePorts only on the node's primary
 * address, its InternalIP: probed at a public ExternalIP they refuse, and Local Services fail open.
 */
export type ProbeAddressPreference = readonly AddressType[] | "published";
export const DEFAULT_PROBE_ADDRESS_PREFERENCE: readonly AddressType[] = ["InternalIP", "ExternalIP"];

/** Which IP family to publish for dual-stack nodes; undefined = the first address listed. */
export type AddressFamily = "ipv4" | "ipv6" | "prefer-ipv4" | "prefer-ipv6";
export const ADDRESS_FAMILIES: readonly AddressFamily[] = ["ipv4", "ipv6", "prefer-ipv4", "prefer-ipv6"];

export type NodeVerdict =
  | {
      eligible: true;
      address: string;
      /** Why Cloudflare will refuse to connect to this address (private, loopback, …), if it will. */
      unroutable?: string;
      /** A problem with the node's edgelb annotation (the status address is used instead). */
      problem?: string;
    }
  | { eligible: false; reason: string };

// Ranges Workers' connect() refuses (and that no public client could reach anyway).
const UNROUTABLE: [Cidr, string][] = (
  [
    ["0.0.0.0/8", "an unspecified (\"this network\") address"],
    ["10.0.0.0/8", "a private address (RFC 1918)"],
    ["100.64.0.0/10", "a carrier-grade NAT address (RFC 6598)"],
    ["127.0.0.0/8", "a loopback address"],
    ["169.254.0.0/16", "a link-local address"],
    ["172.16.0.0/12", "a private address (RFC 1918)"],
    ["192.168.0.0/16", "a private address (RFC 1918)"],
    ["::/128", "the unspecified address"],
    ["::1/128", "a loopback address"],
    ["fc00::/7", "a unique local address (RFC 4193)"],
    ["fe80::/10", "a link-local address"],
  ] as const
).map(([c, why]) => [parseCidr(c)!, why]);

/** Why the edge cannot reach this address, or undefined (public IPs, and hostnames, which resolve later). */
export function unroutableReason(address: string): string | undefined {
  const ip = parseIP(address);
  if (!ip) return undefined;
  for (const [range, why] of UNROUTABLE) if (cidrContains(range, ip)) return why;
  return undefined;
}

/** Go's strconv.ParseBool, which upstream uses for the exclusion label. */
export function parseGoBool(value: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  return undefined;
}

/** Why a node is not a backend, or undefined when it may be one. */
export function nodeExclusion(node: V1Node): string | undefined {
  if (node.metadata?.deletionTimestamp) return "being deleted";
  const label = node.metadata?.labels?.[LABEL_EXCLUDE_FROM_LB];
  // Upstream: the label excludes unless its value parses as false.
  if (label !== undefined && parseGoBool(label) !== false) {
    return `labelled ${LABEL_EXCLUDE_FROM_LB}=${JSON.stringify(label)}`;
  }
  if (node.spec?.taints?.some((t) => t.key === TAINT_TO_BE_DELETED)) {
    return `tainted ${TAINT_TO_BE_DELETED} (scale-down)`;
  }
  return undefined;
}

function familyOf(addr: string): "ipv4" | "ipv6" | undefined {
  return isIPv4(addr) ? "ipv4" : isIPv6(addr) ? "ipv6" : undefined;
}

/**
 * The address of the most preferred type; IPs only for *IP types. Within a
 * type, `family` picks among a dual-stack node's addresses (hostnames have
 * no family and always qualify).
 */
export function nodeAddress(node: V1Node, preference: readonly AddressType[], family?: AddressFamily): string | undefined {
  const addresses = node.status?.addresses ?? [];
  for (const type of preference) {
    const candidates: string[] = [];
    for (const a of addresses) {
      if (a.type !== type || !a.address) continue;
      const addr = a.address.trim().toLowerCase();
      if (type.endsWith("IP") && !isIPLiteral(addr)) continue;
      candidates.push(addr);
    }
    if (candidates.length === 0) continue;
    if (!family) return candidates[0];
    const want = family === "ipv4" || family === "prefer-ipv4" ? "ipv4" : "ipv6";
    const exact = candidates.find((c) => familyOf(c) === want || familyOf(c) === undefined);
    if (exact) return exact;
    if (family.startsWith("prefer-")) return candidates[0];
  }
  return undefined;
}

export interface NodeOptions {
  family?: AddressFamily | undefined;
}

export function evaluateNode(node: V1Node, preference: readonly AddressType[], opts: NodeOptions = {}): NodeVerdict {
  const reason = nodeExclusion(node);
  if (reason) return { eligible: false, reason };
  // An admin's explicit address wins (e.g. the public IP in front of a NAT).
  const override = node.metadata?.annotations?.[ANNOTATION_NODE_ADDRESS]?.trim().toLowerCase();
  let problem: string | undefined;
  let address: string | undefined;
  if (override) {
    // "203.0.113.300" passes as a hostname syntactically; a numeric last label never is one.
    const lastLabel = override.split(".").pop() ?? "";
    if (v.is(NodeAddress, override) && (isIPLiteral(override) || !/^\d+$/.test(lastLabel))) address = override;
    else problem = `${ANNOTATION_NODE_ADDRESS}=${JSON.stringify(override)} is not an IP address or hostname; using the node's status address`;
  }
  address ??= nodeAddress(node, preference, opts.family);
  if (!address) {
    const fam = opts.family === "ipv4" || opts.family === "ipv6" ? ` (${opts.family})` : "";
    return { eligible: false, reason: `no address of type ${preference.join(" or ")}${fam}${problem ? `; ${problem}` : ""}` };
  }
  const unroutable = unroutableReason(address);
  return { eligible: true, address, ...(unroutable ? { unroutable } : {}), ...(problem ? { problem } : {}) };
}

/** The address the agent probes `node` at (see ProbeAddressPreference); `published` when no type matches. */
export function probeAddress(node: V1Node, published: string, preference: ProbeAddressPreference, family?: AddressFamily): string {
  if (preference === "published") return published;
  return nodeAddress(node, preference, family) ?? published;
}
