// Review findings 5, 7, 8, 9, 10 on issue 15: what docs/gate.md must tell an operator.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const doc = readFileSync(new URL("../../docs/gate.md", import.meta.url), "utf8");
const section = (title: RegExp) => {
  const start = doc.search(title);
  expect(start).toBeGreaterThanOrEqual(0);
  const rest = doc.slice(start + 1);
  const end = rest.search(/\n#{2,3} /);
  return end === -1 ? rest : rest.slice(0, end);
};

describe("docs/gate.md firewall recipes", () => {
  it("DigitalOcean: the recipe is for Droplets, and says plainly that DOKS keeps NodePorts open (finding 5)", () => {
    const s = section(/### Cloud firewall: DigitalOcean/);
    expect(s).toMatch(/self-managed clusters on Droplets/);
    expect(s).toMatch(/does \*\*not\*\* close NodePorts on \*\*DOKS\*\*/);
    expect(s).toMatch(/Cilium/);
  });

  it("every recipe has an outside check that the NodePort times out (finding 5)", () => {
    for (const title of [/### Cloud firewall: Hetzner/, /### Cloud firewall: DigitalOcean/, /### nftables on the node/, /### ufw on the node/]) {
      expect(section(title)).toContain("curl --max-time 5 http://<public IP>:<NodePort>/");
    }
  });

  it("nftables and ufw accept the cluster's nodes first and drop only new connections (finding 8)", () => {
    const nft = section(/### nftables on the node/);
    expect(nft.indexOf("ip saddr @cluster_nodes accept")).toBeGreaterThan(0);
    expect(nft.indexOf("ip saddr @cluster_nodes accept")).toBeLessThan(nft.indexOf("ct state new tcp dport"));
    expect(nft).not.toMatch(/^\s*tcp dport \{[^}]*\} drop/m);
    expect(nft).toMatch(/ct state new tcp dport \{ 10256, 29081, 30000-32767 \} drop/);
    const ufw = section(/### ufw on the node/);
    expect(ufw).toContain("*mangle");
    expect(ufw.indexOf("-j ACCEPT")).toBeLessThan(ufw.indexOf("-j DROP"));
    for (const line of ufw.split("\n").filter((l) => l.includes("-j DROP"))) expect(line).toContain("--ctstate NEW");
  });
});

describe("docs/gate.md threat model and turning it on", () => {
  it("says an on-path attacker can change every unsigned header, and points to TLS to the backend (finding 9)", () => {
    const s = section(/## Threat model/);
    expect(s).toMatch(/on the path/);
    for (const h of ["Cookie", "Authorization", "X-Forwarded-For"]) expect(s).toContain(h);
    expect(s).toMatch(/TLS to the backend/);
  });

  it("says the replay cache is lost when a gate restarts (finding 10)", () => {
    expect(section(/## Threat model/)).toMatch(/replay cache lives in the gate's memory/);
  });

  it("turns gate mode on in two applies, gates first (finding 7)", () => {
    const s = section(/## Turn it on/);
    expect(s).toMatch(/two applies/);
    expect(s.indexOf("rollout status")).toBeGreaterThan(s.indexOf("two applies"));
  });
});

describe("docs/gate.md for a newcomer with stock kubectl", () => {
  it("turns it on from a fresh install: ConfigMap and namespace first, the namespace's Pod Security lifted before the DaemonSet", () => {
    const s = section(/## Turn it on/);
    expect(s).toMatch(/`edgelb-cluster` ConfigMap/);
    for (const env of ["EDGELB_CLUSTER", "NODE_NAME", "NODE_IP"]) expect(s).toContain(env);
    const label = s.indexOf("kubectl label namespace edgelb pod-security.kubernetes.io/enforce=privileged");
    expect(label).toBeGreaterThan(0);
    // Stock kubectl, no checkout: the DaemonSet by URL, after the label (restricted refuses hostNetwork pods).
    expect(s.indexOf("kubectl apply -f https://raw.githubusercontent.com/edgelb/edgelb/v0.1.0/deploy/gate/daemonset.yaml")).toBeGreaterThan(label);
  });

  it("says tenant namespaces must be Pod Security baseline (hostPort, hostNetwork) and what the gate does when its port is taken", () => {
    const s = section(/## Pod Security/);
    expect(s).toMatch(/tenant namespace at Pod Security `baseline`/);
    expect(s).toContain("pod-security.kubernetes.io/enforce=baseline");
    expect(s).toMatch(/`hostPort` equal to the gate's port/);
    expect(s).toMatch(/`gate\.port_taken`/);
    expect(s).toMatch(/exits\s+with status 1/);
  });
});

describe("docs/production.md walks the gate path (the default recommendation)", () => {
  const guide = readFileSync(new URL("../../docs/production.md", import.meta.url), "utf8");
  const part = (from: string, to: string) => guide.slice(guide.indexOf(from), guide.indexOf(to, guide.indexOf(from) + 1));

  it("puts the gate's key in §1, installs the gate in §3, checks origins mode gate in §4, and marks the direct setup as the alternative", () => {
    expect(part("## 1. Deploy the worker", "## 2.")).toContain("npx wrangler secret put EDGELB_GATE_KEY");
    const install = part("## 3. Install the sync agent", "### What you get");
    expect(install).toContain("components: [deploy/gate]");
    expect(install).toContain("(gate.md#turn-it-on)");
    // The origins check before the firewall step: closing the NodePorts with the agent still direct is an outage (rv-ops 1).
    expect(install.indexOf('"origins": {"mode": "gate", "port": 29080}')).toBeGreaterThan(0);
    expect(install.indexOf('"origins": {"mode": "gate", "port": 29080}')).toBeLessThan(install.indexOf("close the"));
    expect(part("## 4. Check that it works", "## Several clusters")).toContain('"origins": {"mode": "gate", "port": 29080}');
    const open = part("## 2. Open the NodePorts to the edge", "## 3.");
    expect(open.indexOf("### Without the gate (not recommended)")).toBeGreaterThan(open.indexOf("Recommended, and the path this guide walks"));
  });
});

describe("docs/gate.md firewall recipes keep the agent's probes working (rv-ops 2)", () => {
  it("says the agent probes each node's public address from the nodes' public addresses, and how to check that no node fails", () => {
    const s = section(/## Firewall recipes/);
    expect(s).toMatch(/Allow every node's public address too/);
    expect(s).toContain("kubectl -n edgelb logs deploy/edgelb-sync-agent | grep 'failed its health check'");
    const hetzner = section(/### Cloud firewall: Hetzner/);
    expect(hetzner).toMatch(/for port in 10256 30000-32767; do[\s\S]*--source-ips 198\.51\.100\.11\/32/);
    expect(section(/### nftables on the node/)).toMatch(/Every node's public address/);
    expect(section(/### ufw on the node/)).toMatch(/every node's public address/);
  });

  it("credits the gate's own strict head parser for its 400s, not Node's (rv-ops 8: the gate no longer runs node:http)", () => {
    expect(doc).not.toMatch(/Node's strict/);
    expect(section(/^## Costs and limits/m)).toMatch(/parses the request\s+head strictly and answers `400`/);
  });
});
