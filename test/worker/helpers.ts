// Shared helpers for the worker suites: snapshots, a fresh Edge per test,
// requests with a Host, pushes, and the global setup's control endpoint.
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { inject } from "vitest";
import { createEdge, type Edge, type EdgeOptions } from "../../worker/edge.ts";
import type { Env } from "../../worker/env/index.ts";
import { memoryLogger } from "../../worker/log/index.ts";
import { SNAPSHOT_SCHEMA, type SnapshotInput } from "../../worker/snapshot/schema.ts";
import type { SimGroup } from "./global-setup.ts";

export const lab = inject("edgeLab");
export const TOKEN = "test-push-token";

type ServiceInput = SnapshotInput["services"][number];
type NodeInput = SnapshotInput["nodes"][number];

let generation = Date.now();
/** Strictly increasing across the whole run, so pushes never go backwards. */
export function nextGeneration(): number {
  return ++generation;
}

let clusterSeq = 0;
/** A cluster name no other test uses (KV is shared within a test file). */
export function uniqueCluster(prefix = "c"): string {
  return `${prefix}-${Date.now().toString(36)}-${clusterSeq++}`;
}

export function nodesOf(list: { name: string; address: string }[], healthy = true): NodeInput[] {
  return list.map((n) => ({ name: n.name, address: n.address, healthy }));
}

export function service(over: Partial<ServiceInput> & { hostnames: string[]; nodePort: number }): ServiceInput {
  return { namespace: "default", name: "web", ...over };
}

export function snapshot(cluster: string, nodes: NodeInput[], services: ServiceInput[], gen = nextGeneration()): SnapshotInput {
  return { schema: SNAPSHOT_SCHEMA, cluster, generation: gen, publishedAt: new Date().toISOString(), nodes, services };
}

export interface TestEdge extends Edge {
  logs: ReturnType<typeof memoryLogger>["entries"];
  /** A request with the given Host, through the whole worker (control + proxy). */
  request(host: string, path?: string, init?: RequestInit): Promise<Response>;
  push(snap: SnapshotInput | string, init?: { token?: string | null; cluster?: string }): Promise<Response>;
  /** Pushes and fails the test unless accepted. */
  seed(snap: SnapshotInput): Promise<void>;
}

export function testEdge(vars: Partial<Env> = {}, opts: Omit<EdgeOptions, "env"> = {}): TestEdge {
  const log = memoryLogger();
  const edge = createEdge({ env: { ...(env as unknown as Env), ...vars }, log, ...opts });
  const request = async (host: string, path = "/", init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set("host", host);
    // What a client sends on the wire with a body of known size (a Request built here has none).
    if (typeof init.body === "string" && !headers.has("content-length")) {
      headers.set("content-length", String(new TextEncoder().encode(init.body).byteLength));
    }
    const ctx = createExecutionContext();
    const res = await edge.fetch(new Request(`https://${host}${path}`, { ...init, headers }), ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };
  const push = (snap: SnapshotInput | string, init: { token?: string | null; cluster?: string } = {}) => {
    const body = typeof snap === "string" ? snap : JSON.stringify(snap);
    const cluster = init.cluster ?? (typeof snap === "string" ? "default" : snap.cluster);
    const headers: Record<string, string> = { "content-type": "application/json" };
    const token = init.token === undefined ? TOKEN : init.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    return request("localhost", `/__edgelb/v1/clusters/${cluster}`, { method: "PUT", headers, body });
  };
  return Object.assign(edge, {
    logs: log.entries,
    request,
    push,
    async seed(snap: SnapshotInput) {
      const res = await push(snap);
      if (res.status !== 200) throw new Error(`seeding ${snap.cluster} failed: ${res.status} ${await res.text()}`);
    },
  });
}

/** An Edge serving exactly one cluster, seeded with one Service. */
export async function edgeWithService(
  svc: Omit<ServiceInput, "namespace" | "name"> & Partial<ServiceInput>,
  nodes: NodeInput[],
  vars: Partial<Env> = {},
  opts: Omit<EdgeOptions, "env"> = {},
): Promise<TestEdge & { cluster: string }> {
  const cluster = uniqueCluster();
  const edge = testEdge({ EDGELB_CLUSTERS: cluster, ...vars }, opts);
  await edge.seed(snapshot(cluster, nodes, [service(svc)]));
  return Object.assign(edge, { cluster });
}

export async function control(path: string, method = "POST", body?: unknown): Promise<unknown> {
  const res = await fetch(`${lab.control}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`control ${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Simulated nodes of a test's own, on their own /24. */
export async function simGroup(count = 3): Promise<SimGroup & { release(): Promise<void> }> {
  const group = (await control("/groups", "POST", { count })) as SimGroup;
  return { ...group, release: async () => void (await control(`/groups/${group.id}`, "DELETE")) };
}

export function setBehavior(node: string, behavior: { mode: string; delayMs?: number; status?: number }): Promise<unknown> {
  return control(`/nodes/${node}/behavior`, "POST", behavior);
}

/** Polls until `check` returns a value that is not undefined, or fails after the deadline. */
export async function until<T>(check: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Echo {
  node: string;
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  bodyBytes: number;
  body: string;
}
