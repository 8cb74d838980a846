// rv-ops 7: kube-proxy in nftables mode (or --nodeport-addresses primary) serves NodePorts and
// healthCheckNodePorts only on the node's InternalIP. The agent probes there, whatever it publishes.
import type { V1EndpointSlice, V1Node, V1Service } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { computeTopology, healthTargets, type DesiredOptions } from "./desired.ts";
import { DEFAULT_ADDRESS_PREFERENCE, probeAddress, type ProbeAddressPreference } from "./node.ts";

const node = (name: string, addresses: { type: string; address: string }[], annotations?: Record<string, string>): V1Node =>
  ({ metadata: { name, ...(annotations ? { annotations } : {}) }, status: { addresses } }) as V1Node;

const hetzner = node("node-1", [
  { type: "InternalIP", address: "10.0.0.5" },
  { type: "ExternalIP", address: "203.0.113.5" },
]);

const local: V1Service = {
  metadata: { name: "shop", namespace: "default", annotations: { "edgelb.dev/hostnames": "shop.example.com" } },
  spec: { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 32400, selector: { app: "shop" }, ports: [{ port: 80, nodePort: 30080 }] },
} as V1Service;
const slice: V1EndpointSlice = {
  addressType: "IPv4",
  metadata: { name: "shop-1", namespace: "default", labels: { "kubernetes.io/service-name": "shop" } },
  endpoints: [{ addresses: ["10.244.0.9"], nodeName: "node-1", conditions: { ready: true } }],
} as V1EndpointSlice;

function targets(nodes: V1Node[], probe?: ProbeAddressPreference) {
  const opts: DesiredOptions = {
    cluster: "home",
    loadBalancerClass: "edgelb.dev/worker",
    onlyClass: false,
    addressPreference: DEFAULT_ADDRESS_PREFERENCE,
    ...(probe ? { probeAddressPreference: probe } : {}),
  };
  const topo = computeTopology({ nodes, services: [local], endpointSlices: [slice], endpointSlicesSynced: true }, opts);
  return { published: topo.nodes.map((n) => n.address), targets: healthTargets(topo) };
}

describe("probe address", () => {
  it("publishes the ExternalIP but probes kube-proxy's healthz and the healthCheckNodePort at the InternalIP", () => {
    const { published, targets: t } = targets([hetzner]);
    expect(published).toEqual(["203.0.113.5"]);
    // The published address is the fallback when nothing answers at the InternalIP (site-local addresses).
    expect(t).toEqual([
      { kind: "node", node: "node-1", address: "10.0.0.5", fallbackAddress: "203.0.113.5" },
      { kind: "local", node: "node-1", address: "10.0.0.5", fallbackAddress: "203.0.113.5", port: 32400 },
    ]);
  });

  it("--probe-address-preference published probes the published address (the old behaviour)", () => {
    expect(targets([hetzner], "published").targets.map((t) => t.address)).toEqual(["203.0.113.5", "203.0.113.5"]);
  });

  it("probes a NAT'd node (edgelb.dev/address) at its InternalIP, and a node without the preferred types at its published address", () => {
    const natted = node("natted", [{ type: "InternalIP", address: "192.168.1.20" }], { "edgelb.dev/address": "198.51.100.20" });
    expect(probeAddress(natted, "198.51.100.20", ["InternalIP", "ExternalIP"])).toBe("192.168.1.20");
    const onlyHostname = node("h", [{ type: "Hostname", address: "h.example.com" }]);
    expect(probeAddress(onlyHostname, "h.example.com", ["InternalIP", "ExternalIP"])).toBe("h.example.com");
  });

  it("follows the address family among a dual-stack node's InternalIPs", () => {
    const dual = node("dual", [
      { type: "InternalIP", address: "10.0.0.7" },
      { type: "InternalIP", address: "fd00::7" },
      { type: "ExternalIP", address: "2001:db8::7" },
    ]);
    expect(probeAddress(dual, "2001:db8::7", ["InternalIP", "ExternalIP"], "ipv6")).toBe("fd00::7");
    expect(probeAddress(dual, "2001:db8::7", ["InternalIP", "ExternalIP"])).toBe("10.0.0.7");
  });
});

describe("probe address shared by several nodes (rv-ops s6 3)", () => {
  it("two nodes sharing an InternalIP (site-local, clusters joined over public addresses) are probed at their published addresses", () => {
    const oci = (name: string, external: string) => node(name, [{ type: "InternalIP", address: "10.0.0.2" }, { type: "ExternalIP", address: external }]);
    const other = node("home", [{ type: "InternalIP", address: "192.168.1.5" }, { type: "ExternalIP", address: "192.0.2.7" }]);
    const opts: DesiredOptions = { cluster: "home", loadBalancerClass: "edgelb.dev/worker", onlyClass: false, addressPreference: DEFAULT_ADDRESS_PREFERENCE };
    const topo = computeTopology({ nodes: [oci("oci-a", "203.0.113.10"), oci("oci-b", "198.51.100.20"), other], services: [], endpointSlices: [], endpointSlicesSynced: true }, opts);
    expect(healthTargets(topo).map((t) => [t.node, t.address])).toEqual([
      ["home", "192.168.1.5"],
      ["oci-a", "203.0.113.10"],
      ["oci-b", "198.51.100.20"],
    ]);
    expect(topo.sharedProbeAddresses).toEqual([{ address: "10.0.0.2", nodes: ["oci-a", "oci-b"] }]);
  });
});

describe("probe address shared with an excluded node (rv-ops s6 6)", () => {
  it("a worker whose InternalIP is also the (excluded) control plane's is probed at its published address", () => {
    const cp = node("cp-a", [{ type: "InternalIP", address: "10.0.0.2" }, { type: "ExternalIP", address: "203.0.113.1" }]);
    cp.metadata!.labels = { "node.kubernetes.io/exclude-from-external-load-balancers": "" };
    const worker = node("worker-b", [{ type: "InternalIP", address: "10.0.0.2" }, { type: "ExternalIP", address: "198.51.100.20" }]);
    const opts: DesiredOptions = { cluster: "home", loadBalancerClass: "edgelb.dev/worker", onlyClass: false, addressPreference: DEFAULT_ADDRESS_PREFERENCE };
    const topo = computeTopology({ nodes: [cp, worker], services: [], endpointSlices: [], endpointSlicesSynced: true }, opts);
    expect(healthTargets(topo).map((t) => [t.node, t.address])).toEqual([["worker-b", "198.51.100.20"]]);
    expect(topo.sharedProbeAddresses).toEqual([{ address: "10.0.0.2", nodes: ["cp-a", "worker-b"] }]);
  });
});
