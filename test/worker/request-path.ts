// Helpers for the request-path suites: the origins of request-path.setup.ts,
// an Edge serving them as one Service, and per-tag hit counts.
import { inject } from "vitest";
import { edgeWithService, nodesOf, type TestEdge } from "./helpers.ts";

export const origins = inject("requestPath");
export const host = "shop.example.com";

let seq = 0;
/** A tag no other request of the run uses. */
export function tag(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${seq++}`;
}

export async function hits(t: string): Promise<{ count: number; nodes: string[] }> {
  const res = await fetch(`${origins.control}/hits/${t}`);
  return (await res.json()) as { count: number; nodes: string[] };
}

export function edge(
  transport: "fetch" | "socket",
  policy: Record<string, unknown> = {},
  nodes = nodesOf(origins.nodes),
): Promise<TestEdge & { cluster: string }> {
  return edgeWithService({ hostnames: [host], nodePort: origins.port, policy }, nodes, { EDGELB_TRANSPORT: transport });
}
