// Who may serve a hostname. Names under --default-domain belong to their
// namespace (`*.shop.<domain>` only to namespace shop), and admins may narrow
// annotated hostnames cluster-wide (--allowed-hostnames) and per namespace
// (the edgelb.dev/allowed-hostnames Namespace annotation: namespace
// annotations are admin territory, Service annotations are not). Pure.
import type { V1Namespace } from "@kubernetes/client-node";
import * as v from "valibot";
import { Hostname } from "../../worker/snapshot/schema.ts";
import { ANNOTATION_ALLOWED_HOSTNAMES } from "./constants.ts";

export interface HostnamePolicy {
  defaultDomain?: string | undefined;
  /** Cluster-wide patterns for annotated hostnames; undefined = no restriction. */
  allowed?: readonly string[] | undefined;
  /** Per namespace patterns from its annotation; a namespace absent here has no restriction. */
  byNamespace: ReadonlyMap<string, readonly string[]>;
}

/** Parses a comma-separated pattern list ("*.shop.example.com,shop.example.com"); invalid entries are dropped. */
export function parsePatterns(text: string): { patterns: string[]; invalid: string[] } {
  const items = text.split(",").map((s) => s.trim().toLowerCase().replace(/\.$/, "")).filter((s) => s !== "");
  return { patterns: items.filter((s) => v.is(Hostname, s)), invalid: items.filter((s) => !v.is(Hostname, s)) };
}

export function namespacePatterns(namespaces: readonly V1Namespace[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const ns of namespaces) {
    const raw = ns.metadata?.annotations?.[ANNOTATION_ALLOWED_HOSTNAMES];
    // Set but empty or all invalid: nothing is allowed (closed, not open).
    if (raw !== undefined && ns.metadata?.name) out.set(ns.metadata.name, parsePatterns(raw).patterns);
  }
  return out;
}

/** An exact name, or `*.suffix` covering exactly one more label (like the edge's routing and TLS certificates). */
export function matchesPattern(hostname: string, pattern: string): boolean {
  if (hostname === pattern) return true;
  if (!pattern.startsWith("*.")) return false;
  const suffix = pattern.slice(1); // ".shop.example.com"
  if (!hostname.endsWith(suffix)) return false;
  const label = hostname.slice(0, -suffix.length);
  return label.length > 0 && !label.includes(".");
}

/** The namespace a name under the default domain belongs to; null = none may claim it; undefined = not under it. */
export function domainOwner(hostname: string, defaultDomain: string | undefined): string | null | undefined {
  if (!defaultDomain) return undefined;
  if (hostname === defaultDomain) return null;
  if (!hostname.endsWith(`.${defaultDomain}`)) return undefined;
  const labels = hostname.slice(0, -defaultDomain.length - 1).split(".");
  const owner = labels[labels.length - 1]!;
  return owner === "*" ? null : owner;
}

/** Why `namespace` may not serve `hostname`, or undefined when it may. */
export function hostnameRefusal(hostname: string, namespace: string, annotated: boolean, policy: HostnamePolicy): string | undefined {
  const owner = domainOwner(hostname, policy.defaultDomain);
  if (owner === null) return `${hostname} would cover every namespace under --default-domain ${policy.defaultDomain}`;
  if (owner !== undefined && owner !== namespace) {
    return `${hostname} is under --default-domain ${policy.defaultDomain} and belongs to namespace ${owner}`;
  }
  if (!annotated) return undefined;
  if (policy.allowed && !policy.allowed.some((p) => matchesPattern(hostname, p))) {
    return `${hostname} is not in --allowed-hostnames (${policy.allowed.join(",") || "empty"})`;
  }
  const nsPatterns = policy.byNamespace.get(namespace);
  if (nsPatterns && !nsPatterns.some((p) => matchesPattern(hostname, p))) {
    return `${hostname} is not allowed in namespace ${namespace} (its ${ANNOTATION_ALLOWED_HOSTNAMES}: ${nsPatterns.join(",") || "empty"})`;
  }
  return undefined;
}
