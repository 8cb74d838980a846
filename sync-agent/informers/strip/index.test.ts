// What the informer caches keep of each kind, and when an update is a no-op.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { V1Node, V1ObjectMeta, loadAllYaml, type V1EndpointSlice, type V1Namespace, type V1Service } from "@kubernetes/client-node";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { heartbeat, realisticNode, realisticService } from "../../../bench/lib/realistic.ts";
import { evaluateNode } from "../../model/node.ts";
import { evaluateService } from "../../model/service.ts";
import { indexLocalEndpoints } from "../../model/endpoints.ts";
import { buildSnapshot, computeTopology, type ClusterState } from "../../model/desired.ts";
import { DEFAULT_ADDRESS_PREFERENCE, type AddressFamily, type AddressType } from "../../model/node.ts";
import { ENDPOINT_SLICE_SHAPE, NAMESPACE_SHAPE, NODE_SHAPE, SERVICE_SHAPE, keepKeys, sameContent, strip } from "./index.ts";

const bytes = (o: unknown) => Buffer.byteLength(JSON.stringify(o));
const node = (i = 1) => realisticNode(i, { address: "10.0.0.1" }) as V1Node;

describe("strip: Nodes", () => {
  it("keeps a realistic 15 KB Node's name, address, zone, our labels/annotations, and the scale-down taint only", () => {
    const raw = node() as V1Node & { metadata: { labels: Record<string, string>; annotations: Record<string, string> } };
    raw.metadata.labels["node.kubernetes.io/exclude-from-external-load-balancers"] = "false";
    raw.metadata.annotations["edgelb.dev/address"] = "203.0.113.9";
    raw.spec!.taints = [
      { key: "ToBeDeletedByClusterAutoscaler", value: "1700000000", effect: "NoSchedule" },
      { key: "node.kubernetes.io/unreachable", effect: "NoExecute" },
    ];
    expect(bytes(raw)).toBeGreaterThan(12_000);
    const s = strip(NODE_SHAPE, raw);
    expect(s).toEqual({
      metadata: {
        name: "node-1",
        creationTimestamp: "2026-01-05T08:00:00Z",
        labels: { "topology.kubernetes.io/zone": "eu-central-b", "node.kubernetes.io/exclude-from-external-load-balancers": "false" },
        annotations: { "edgelb.dev/address": "203.0.113.9" },
      },
      spec: { taints: [{ key: "ToBeDeletedByClusterAutoscaler", value: "1700000000", effect: "NoSchedule" }] },
      status: {
        addresses: [
          { type: "InternalIP", address: "10.0.0.1" },
          { type: "Hostname", address: "node-1" },
          { type: "InternalDNS", address: "ip-10-0-0-1.eu-central-1.compute.internal" },
        ],
      },
    });
    expect(bytes(s)).toBeLessThan(800);
    // The same verdict from the stripped Node as from the full one.
    expect(evaluateNode(s, ["InternalIP"])).toEqual(evaluateNode(raw, ["InternalIP"]));
  });

  it("a heartbeat (lastHeartbeatTime + resourceVersion) is the same content; an address or label change is not", () => {
    const a = { ...node(), metadata: { ...node().metadata, resourceVersion: "10" } } as V1Node;
    const b = { ...heartbeat(a as Record<string, unknown>, "2026-03-01T12:05:00Z"), metadata: { ...a.metadata, resourceVersion: "11" } } as V1Node;
    expect(sameContent(strip(NODE_SHAPE, a), strip(NODE_SHAPE, b))).toBe(true);
    const moved = structuredClone(b);
    moved.status!.addresses![0]!.address = "10.0.0.2";
    expect(sameContent(strip(NODE_SHAPE, a), strip(NODE_SHAPE, moved))).toBe(false);
    const excluded = structuredClone(b);
    excluded.metadata!.labels!["node.kubernetes.io/exclude-from-external-load-balancers"] = "true";
    expect(sameContent(strip(NODE_SHAPE, a), strip(NODE_SHAPE, excluded))).toBe(false);
    const deleting = structuredClone(b);
    deleting.metadata!.deletionTimestamp = "2026-03-01T12:06:00Z" as unknown as Date;
    expect(sameContent(strip(NODE_SHAPE, a), strip(NODE_SHAPE, deleting))).toBe(false);
  });

  it("a LIST item (client-node class, Date timestamps) and a watch event (plain JSON) strip to equal objects", () => {
    const json = { ...node(), metadata: { ...node().metadata, deletionTimestamp: "2026-03-01T12:06:00Z" } };
    // What client-node's LIST deserialiser makes of it: class instances, Dates.
    const meta = Object.assign(new V1ObjectMeta(), structuredClone(json.metadata), {
      creationTimestamp: new Date("2026-01-05T08:00:00Z"),
      deletionTimestamp: new Date("2026-03-01T12:06:00Z"),
    });
    const typed = Object.assign(new V1Node(), structuredClone(json), { metadata: meta });
    expect(strip(NODE_SHAPE, typed)).toEqual(strip(NODE_SHAPE, json));
    expect(sameContent(strip(NODE_SHAPE, typed), strip(NODE_SHAPE, json))).toBe(true);
  });
});

describe("strip: Services and EndpointSlices", () => {
  it("keeps what the Service verdict and status read, drops last-applied, managedFields and foreign labels", () => {
    const raw = realisticService(3, "team-a", "a.example.com") as unknown as V1Service & { metadata: { annotations: Record<string, string> } };
    raw.metadata.annotations["edgelb.dev/retry-non-idempotent"] = "true";
    raw.metadata.annotations["service.beta.kubernetes.io/load-balancer-source-ranges"] = "203.0.113.0/24";
    raw.spec!.externalTrafficPolicy = "Local";
    raw.spec!.healthCheckNodePort = 32000;
    raw.spec!.ports![0]!.nodePort = 31000;
    raw.status = { loadBalancer: { ingress: [{ hostname: "a.example.com" }] } };
    const s = strip(SERVICE_SHAPE, raw);
    expect(s.metadata).toEqual({
      name: "svc-3",
      namespace: "team-a",
      annotations: {
        "edgelb.dev/hostnames": "a.example.com",
        "edgelb.dev/retry-non-idempotent": "true",
        "service.beta.kubernetes.io/load-balancer-source-ranges": "203.0.113.0/24",
      },
    });
    expect(s.spec).toEqual({
      type: "LoadBalancer",
      externalTrafficPolicy: "Local",
      healthCheckNodePort: 32000,
      ports: [{ name: "http", port: 80, protocol: "TCP", nodePort: 31000 }],
      selector: { app: "svc-3" },
    });
    expect(s.status).toEqual(raw.status);
    const opts = { loadBalancerClass: "edgelb.dev/worker", onlyClass: false };
    expect(evaluateService(s, opts)).toEqual(evaluateService(raw, opts));
  });

  it("keeps an EndpointSlice's service label, endpoint readiness, node and identity; a hints-only change is no change", () => {
    const raw: V1EndpointSlice = {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      addressType: "IPv4",
      metadata: {
        name: "web-abc",
        namespace: "default",
        resourceVersion: "5",
        labels: { "kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io" },
        annotations: { "endpoints.kubernetes.io/last-change-trigger-time": "2026-03-01T12:00:00Z" },
        ownerReferences: [{ apiVersion: "v1", kind: "Service", name: "web", uid: "u1" }],
      },
      endpoints: [
        { addresses: ["10.244.0.5"], conditions: { ready: true, serving: true, terminating: false }, nodeName: "node-1", zone: "a", targetRef: { kind: "Pod", name: "web-1", namespace: "default", uid: "p1", resourceVersion: "77" }, hints: { forZones: [{ name: "a" }] } },
        { addresses: ["10.244.0.6"], conditions: { ready: false, serving: true, terminating: true }, nodeName: "node-2", targetRef: { kind: "Pod", name: "web-2", uid: "p2" } },
      ],
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    };
    const s = strip(ENDPOINT_SLICE_SHAPE, raw);
    expect(s.metadata).toEqual({ name: "web-abc", namespace: "default", resourceVersion: "5", labels: { "kubernetes.io/service-name": "web" } });
    expect(s.endpoints![0]).toEqual({ addresses: ["10.244.0.5"], conditions: { ready: true, serving: true, terminating: false }, nodeName: "node-1", zone: "a", targetRef: { kind: "Pod", name: "web-1", namespace: "default", uid: "p1" } });
    expect(indexLocalEndpoints([s])).toEqual(indexLocalEndpoints([raw]));
    const next = structuredClone(raw);
    next.metadata!.resourceVersion = "6";
    next.endpoints![0]!.hints = { forZones: [{ name: "b" }] };
    next.endpoints![0]!.targetRef!.resourceVersion = "78";
    expect(sameContent(s, strip(ENDPOINT_SLICE_SHAPE, next))).toBe(true);
    next.endpoints![1]!.conditions!.ready = true;
    expect(sameContent(s, strip(ENDPOINT_SLICE_SHAPE, next))).toBe(false);
  });

  it("keeps a Namespace's edgelb.dev/ annotations and labels only", () => {
    const ns = { metadata: { name: "team-a", labels: { "kubernetes.io/metadata.name": "team-a", "edgelb.dev/zone": "x" }, annotations: { "edgelb.dev/default-domain": "a.example.com", other: "x" } }, status: { phase: "Active" } };
    expect(strip(NAMESPACE_SHAPE, ns)).toEqual({ metadata: { name: "team-a", labels: { "edgelb.dev/zone": "x" }, annotations: { "edgelb.dev/default-domain": "a.example.com" } }, status: { phase: "Active" } });
  });
});

describe("strip: the model sees no difference", () => {
  // Every golden cluster of the model's tests (sync-agent/model/testdata): the
  // snapshot and every verdict computed from stripped objects equal those from
  // the full objects. A new field the model reads but strip drops fails here.
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../model/testdata");
  const cases = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  it.each(cases)("%s", (file) => {
    const docs = loadAllYaml(readFileSync(path.join(dir, file), "utf8")).filter(Boolean) as { kind: string; [k: string]: unknown }[];
    const opts = (docs.find((d) => d.kind === "TestOptions") ?? {}) as Record<string, unknown>;
    const health = (docs.find((d) => d.kind === "TestHealth") ?? {}) as { nodes?: Record<string, boolean>; local?: Record<string, boolean> };
    const of = <T>(kind: string) => docs.filter((d) => d.kind === kind) as unknown as T[];
    const raw = { nodes: of<V1Node>("Node"), services: of<V1Service>("Service"), endpointSlices: of<V1EndpointSlice>("EndpointSlice"), namespaces: of<V1Namespace>("Namespace") };
    const stripped = {
      nodes: raw.nodes.map((o) => strip(NODE_SHAPE, o)),
      services: raw.services.map((o) => strip(SERVICE_SHAPE, o)),
      endpointSlices: raw.endpointSlices.map((o) => strip(ENDPOINT_SLICE_SHAPE, o)),
      namespaces: raw.namespaces.map((o) => strip(NAMESPACE_SHAPE, o)),
    };
    const compute = (state: typeof raw) => {
      const cluster = String(opts.cluster ?? "test");
      const topo = computeTopology(state as ClusterState, {
        cluster,
        loadBalancerClass: "edgelb.dev/worker",
        onlyClass: opts.onlyClass === true,
        defaultDomain: opts.defaultDomain as string | undefined,
        addressPreference: (opts.addressPreference as AddressType[] | undefined) ?? DEFAULT_ADDRESS_PREFERENCE,
        addressFamily: opts.addressFamily as AddressFamily | undefined,
        allowPrivateAddresses: opts.allowPrivateAddresses === true,
        allowedHostnames: opts.allowedHostnames as string[] | undefined,
      });
      const desired = buildSnapshot(topo, { node: (n) => health.nodes?.[n], local: (n, p) => health.local?.[`${n}:${p}`] }, cluster);
      return { body: desired.body, pending: desired.pending, verdicts: [...topo.verdicts], nodes: [...topo.nodeVerdicts] };
    };
    expect(raw.nodes.length + raw.services.length).toBeGreaterThan(0);
    expect(compute(stripped)).toEqual(compute(raw));
  });
});

describe("strip: hostile input", () => {
  it("never throws and always leaves metadata, whatever arrives (property)", () => {
    for (const shape of [NODE_SHAPE, SERVICE_SHAPE, ENDPOINT_SLICE_SHAPE, NAMESPACE_SHAPE]) {
      fc.assert(
        fc.property(fc.anything(), (obj) => {
          const s = strip(shape, obj) as { metadata?: unknown };
          expect(typeof s.metadata).toBe("object");
          // Idempotent: stripping a stripped object changes nothing.
          expect(strip(shape, s)).toEqual(s);
        }),
        { numRuns: 300 },
      );
    }
  });

  it("keeps only string values of kept label/annotation keys", () => {
    expect(keepKeys(["a", "edgelb.dev/"])({ a: "1", b: "2", "edgelb.dev/x": "3", "edgelb.dev/y": 4, "edgelb.devz": "5" })).toEqual({ a: "1", "edgelb.dev/x": "3" });
    expect(keepKeys(["a"])(["a"])).toBeUndefined();
  });

  it("sameContent ignores only resourceVersion (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), fc.string(), (v, r1, r2) => {
        const a = { metadata: { name: "n", resourceVersion: r1 }, spec: v };
        const b = { metadata: { name: "n", resourceVersion: r2 }, spec: structuredClone(v) };
        expect(sameContent(a, b)).toBe(true);
        expect(sameContent(a, { ...b, metadata: { ...b.metadata, name: "m" } })).toBe(false);
      }),
    );
  });
});
