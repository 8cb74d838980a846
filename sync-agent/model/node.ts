// Which nodes may be load balancer backends, and at which address. Mirrors the
// upstream service controller (k8s.io/cloud-provider, ≥1.30): Ready and
// cordon are deliberately NOT filters — health checks decide that.
import type { V1Node } from "@kubernetes/client-node";
import { isIPLiteral } from "../../worker/snapshot/schema.ts";
import { LABEL_EXCLUDE_FROM_LB, TAINT_TO_BE_DELETED } from "./constants.ts";

export type AddressType = "ExternalIP" | "InternalIP" | "Hostname" | "ExternalDNS" | "InternalDNS";
export const ADDRESS_TYPES: readonly AddressType[] = ["ExternalIP", "InternalIP", "Hostname", "ExternalDNS", "InternalDNS"];
export const DEFAULT_ADDRESS_PREFERENCE: readonly AddressType[] = ["ExternalIP", "InternalIP"];

export type NodeVerdict = { eligible: true; address: string } | { eligible: false; reason: string };

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

/** The first address of the most preferred type; IPs only for *IP types. */
export function nodeAddress(node: V1Node, preference: readonly AddressType[]): string | undefined {
  const addresses = node.status?.addresses ?? [];
  for (const type of preference) {
    for (const a of addresses) {
      if (a.type !== type || !a.address) continue;
      const addr = a.address.trim().toLowerCase();
      if (type.endsWith("IP") && !isIPLiteral(addr)) continue;
      return addr;
    }
  }
  return undefined;
}

export function evaluateNode(node: V1Node, preference: readonly AddressType[]): NodeVerdict {
  const reason = nodeExclusion(node);
  if (reason) return { eligible: false, reason };
  const address = nodeAddress(node, preference);
  if (!address) return { eligible: false, reason: `no address of type ${preference.join(" or ")}` };
  return { eligible: true, address };
}
