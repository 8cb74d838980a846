// `components: [deploy/gate]` on top of deploy/, rendered with kubectl itself.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAllYaml, type V1DaemonSet, type V1Deployment, type V1NetworkPolicy } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { buildGateProgram, type GateConfig } from "../../sync-agent/gate/main.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function render(withGate: boolean, extra: string[] = []): { kind: string; metadata: { name: string } }[] {
  const dir = mkdtempSync(join(tmpdir(), "edgelb-gate-overlay-"));
  try {
    const lines = ["resources:", `  - ${relative(dir, join(ROOT, "deploy"))}`];
    if (withGate) lines.push("components:", `  - ${relative(dir, join(ROOT, "deploy/gate"))}`);
    lines.push(...extra);
    writeFileSync(join(dir, "kustomization.yaml"), `${lines.join("\n")}\n`);
    return loadAllYaml(execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 30_000 })) as never;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("deploy/gate", () => {
  it("lets the agent's gate probes (TCP 29080) out through its NetworkPolicy (else every probe is dropped and the agent fails open)", () => {
    const allows = (np: V1NetworkPolicy, port: number) =>
      (np.spec!.egress ?? []).some((r) => !r.to?.length && (r.ports ?? []).some((p) => p.protocol !== "UDP" && typeof p.port === "number" && p.port <= port && port <= (p.endPort ?? p.port)));
    const withGate = render(true).find((d) => d.kind === "NetworkPolicy" && d.metadata.name === "edgelb-sync-agent") as V1NetworkPolicy;
    expect(allows(withGate, 10256), "kube-proxy healthz (sanity)").toBe(true);
    expect(allows(withGate, 29080), "the gate's /healthz on every node").toBe(true);
    const without = render(false).find((d) => d.kind === "NetworkPolicy" && d.metadata.name === "edgelb-sync-agent") as V1NetworkPolicy;
    expect(allows(without, 29080), "opened only with the gate").toBe(false);
  });

  it("lets the gate's pods in: its namespace enforces Pod Security privileged (hostNetwork, hostPort), still audited at restricted", () => {
    const labels = (docs: { kind: string; metadata: { name: string; labels?: Record<string, string> } }[]) =>
      docs.find((d) => d.kind === "Namespace" && d.metadata.name === "edgelb")!.metadata.labels!;
    // restricted and baseline both refuse hostNetwork and hostPort: the DaemonSet would never get a pod.
    expect(labels(render(true) as never)).toMatchObject({
      "pod-security.kubernetes.io/enforce": "privileged",
      "pod-security.kubernetes.io/audit": "restricted",
    });
    expect(labels(render(false) as never)["pod-security.kubernetes.io/enforce"]).toBe("restricted");
  });

  it("rolls one gate at a time, and counts a restarted gate available only once the agent can have put its node back (rise 2 × 5 s interval + jitter + push)", () => {
    const ds = render(true).find((d) => d.kind === "DaemonSet" && d.metadata.name === "edgelb-node-gate") as V1DaemonSet;
    expect(ds.spec!.updateStrategy!.rollingUpdate!.maxUnavailable).toBe(1);
    // Without it, the next node's gate goes down while the previous node is still out of rotation (two nodes out at once).
    expect(ds.spec!.minReadySeconds ?? 0).toBeGreaterThanOrEqual(2 * 5 * 1.1 + 1);
  });

  it("is opt-in: deploy/ alone has no gate and the agent stays direct", () => {
    const docs = render(false);
    expect(docs.some((d) => d.kind === "DaemonSet")).toBe(false);
    const agent = docs.find((d) => d.kind === "Deployment") as V1Deployment;
    expect(agent.spec!.template.spec!.containers[0]!.args!.join(" ")).not.toContain("--origins");
    expect((agent.spec!.template.spec!.containers[0]!.env ?? []).map((e) => e.name)).not.toContain("EDGELB_ORIGINS");
  });

  it("adds a host-network DaemonSet on the gate port with the key Secret, and switches the agent to --origins=gate", () => {
    const docs = render(true);
    const ds = docs.find((d) => d.kind === "DaemonSet" && d.metadata.name === "edgelb-node-gate") as V1DaemonSet;
    const pod = ds.spec!.template.spec!;
    expect(pod.hostNetwork).toBe(true);
    const c = pod.containers[0]!;
    expect(c.args).toEqual(expect.arrayContaining(["--listen=:29080", "--connect=node"]));
    expect(c.env!.find((e) => e.name === "NODE_IP")!.valueFrom!.fieldRef!.fieldPath).toBe("status.hostIP");
    // The gate refuses to start without its Node name; the downward API gives it.
    expect(c.env!.find((e) => e.name === "NODE_NAME")!.valueFrom!.fieldRef!.fieldPath).toBe("spec.nodeName");
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(pod.volumes!.find((v) => v.name === "keys")!.secret!.secretName).toBe("edgelb-gate-keys");
    expect(c.readinessProbe!.httpGet!.path).toBe("/healthz");
    const agent = docs.find((d) => d.kind === "Deployment") as V1Deployment;
    expect(agent.spec!.template.spec!.containers[0]!.env).toEqual(expect.arrayContaining([{ name: "EDGELB_ORIGINS", value: "gate" }, { name: "EDGELB_GATE_PORT", value: "29080" }]));
  });

  it("the production guide's overlay (its args replaced) + the gate component: the agent still runs with origins gate (rv-ops 1)", () => {
    // kustomize applies an overlay's own patches after its components: a replace of the args wipes anything the component put there.
    const patch = [
      "patches:",
      "  - target: { kind: Deployment, name: edgelb-sync-agent }",
      "    patch: |",
      "      - op: replace",
      "        path: /spec/template/spec/containers/0/args",
      "        value: [--sink=worker, --worker-url=https://edgelb.me.workers.dev,",
      "                --push-token-file=/etc/edgelb/push-token/token, --default-domain=home.example.com,",
      "                --metrics-address=:9090, --log-format=json]",
    ];
    const c = (render(true, patch).find((d) => d.kind === "Deployment") as V1Deployment).spec!.template.spec!.containers[0]!;
    const settings = [...(c.args ?? []), ...(c.env ?? []).map((e) => `${e.name}=${e.value}`)].join(" ");
    expect(settings).toMatch(/--origins=gate|EDGELB_ORIGINS=gate/);
    expect(settings).toMatch(/--gate-port=29080|EDGELB_GATE_PORT=29080/);
  });

  it("the gate starts with the DaemonSet's arguments and the environment the downward API gives it", async () => {
    const c = (render(true).find((d) => d.kind === "DaemonSet") as V1DaemonSet).spec!.template.spec!.containers[0]!;
    const downward: Record<string, string> = { "spec.nodeName": "worker-1", "status.hostIP": "10.0.0.7" };
    const configMap: Record<string, string> = { "edgelb-cluster/name": "home" };
    const env = Object.fromEntries(
      c.env!
        .filter((e) => e.name !== "NODE_OPTIONS")
        .map((e) => [e.name, e.value ?? (e.valueFrom!.configMapKeyRef ? configMap[`${e.valueFrom!.configMapKeyRef.name}/${e.valueFrom!.configMapKeyRef.key}`] : downward[e.valueFrom!.fieldRef!.fieldPath])!]),
    );
    let config: GateConfig | undefined;
    // commander reads option variables from process.env.
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      await buildGateProgram(async (cfg) => void (config = cfg), process.env).parseAsync(["node", "edgelb-node-gate", ...c.args!]);
    } finally {
      for (const k of Object.keys(env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    // The cluster from the agent's ConfigMap: the gate forwards only requests signed for it.
    expect(config).toMatchObject({ nodeName: "worker-1", clusterName: "home", nodeIp: "10.0.0.7", connect: "node", listen: ":29080" });
  });
});
