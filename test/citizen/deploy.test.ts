// What `kubectl apply -k deploy/` installs, rendered with kubectl itself.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadYaml } from "@kubernetes/client-node";
import { addCitizenOptions, resolveCitizenConfig, type CitizenFlags } from "../../sync-agent/citizen/cli.ts";
import { buildProgram, quietErrors } from "../../sync-agent/cli/index.ts";
import { DEFAULTS, type AgentConfig } from "../../sync-agent/config.ts";
import type { V1ClusterRoleBinding, V1Container, V1Namespace, V1NetworkPolicy, V1RoleBinding } from "@kubernetes/client-node";
import { DEFAULT_LEASE_NAME } from "../../sync-agent/leader/index.ts";
import { DEPLOY_DIR, clusterRole, deployment, find, leaseRole, renderDeploy, type Manifest } from "./manifests.ts";
import { allowed, requestAttributes, type Grants } from "./rbac.ts";

let docs: Manifest[];
beforeAll(() => {
  docs = renderDeploy();
});

describe("kustomize base", () => {
  it("installs everything into the edgelb namespace", () => {
    expect(find<V1Namespace>(docs, "Namespace").metadata?.name).toBe("edgelb");
    const kinds = docs.map((d) => d.kind).sort();
    expect(kinds).toEqual(
      ["ClusterRole", "ClusterRoleBinding", "Deployment", "Namespace", "NetworkPolicy", "PodDisruptionBudget", "Role", "RoleBinding", "ServiceAccount"].sort(),
    );
    for (const d of docs) {
      if (["Namespace", "ClusterRole", "ClusterRoleBinding"].includes(d.kind)) continue;
      expect(d.metadata.namespace, `${d.kind} ${d.metadata.name}`).toBe("edgelb");
    }
    // the placeholder token is never applied over a real one
    expect(docs.some((d) => d.kind === "Secret")).toBe(false);
  });

  it("binds both roles to the agent's ServiceAccount", () => {
    const sa = find<Manifest>(docs, "ServiceAccount");
    const crb = find<V1ClusterRoleBinding>(docs, "ClusterRoleBinding");
    const rb = find<V1RoleBinding>(docs, "RoleBinding");
    for (const b of [crb, rb]) expect(b.subjects).toEqual([{ kind: "ServiceAccount", name: sa.metadata.name, namespace: "edgelb" }]);
    expect(crb.roleRef).toMatchObject({ kind: "ClusterRole", name: clusterRole(docs).metadata?.name });
    expect(rb.roleRef).toMatchObject({ kind: "Role", name: leaseRole(docs).metadata?.name });
    expect(deployment(docs).spec?.template.spec?.serviceAccountName).toBe(sa.metadata.name);
  });

  it("grants least privilege: no wildcards, no writes beyond status, events and the lease", () => {
    const rules = [...(clusterRole(docs).rules ?? []), ...(leaseRole(docs).rules ?? [])];
    for (const r of rules) {
      expect(r.verbs).not.toContain("*");
      expect(r.resources).not.toContain("*");
      expect(r.apiGroups).not.toContain("*");
    }
    const g: Grants = { cluster: clusterRole(docs).rules ?? [], namespaced: { namespace: "edgelb", rules: leaseRole(docs).rules ?? [] } };
    const can = (m: string, url: string) => allowed(g, requestAttributes(m, url)!);
    // may
    expect(can("GET", "/api/v1/nodes?watch=true")).toBe(true);
    expect(can("PATCH", "/api/v1/namespaces/shop/services/web/status")).toBe(true);
    expect(can("POST", "/api/v1/namespaces/shop/events")).toBe(true);
    expect(can("PUT", `/apis/coordination.k8s.io/v1/namespaces/edgelb/leases/${DEFAULT_LEASE_NAME}`)).toBe(true);
    expect(can("GET", "/api/v1/namespaces/kube-system")).toBe(true); // the cluster's identity
    expect(can("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/httproutes.gateway.networking.k8s.io")).toBe(true); // GatewayClass SupportedVersion
    expect(can("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/certificates.cert-manager.io")).toBe(false);
    expect(can("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")).toBe(false);
    // may not
    expect(can("GET", "/api/v1/nodes/node-1")).toBe(false); // informers list and watch; nothing gets
    expect(can("GET", "/api/v1/namespaces/shop/services/web")).toBe(false);
    expect(can("PATCH", "/api/v1/namespaces/shop/services/web")).toBe(false); // spec, metadata, finalizers
    expect(can("PUT", "/api/v1/namespaces/shop/services/web/status")).toBe(false);
    expect(can("GET", "/api/v1/namespaces/shop/secrets")).toBe(false);
    expect(can("PUT", "/apis/coordination.k8s.io/v1/namespaces/edgelb/leases/someone-elses")).toBe(false);
    expect(can("PUT", `/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/${DEFAULT_LEASE_NAME}`)).toBe(false);
    expect(can("DELETE", "/api/v1/namespaces/shop/events/x")).toBe(false);
  });

  it("runs two hardened replicas with probes on the agent's endpoints", () => {
    const d = deployment(docs);
    expect(d.spec?.replicas).toBe(2);
    const pod = d.spec!.template.spec!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
    const c = pod.containers[0] as V1Container;
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(c.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources?.limits).toMatchObject({ memory: expect.any(String) });
    expect(c.livenessProbe?.httpGet).toMatchObject({ path: "/healthz", port: "metrics" });
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: "/readyz", port: "metrics" });
    const metricsPort = c.ports?.find((p) => p.name === "metrics")?.containerPort;
    expect(c.args).toContain(`--metrics-address=:${metricsPort}`);
    // the pod name is the lease identity; the namespace is where the Lease lives
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    expect(env).toMatchObject({ POD_NAME: "metadata.name", POD_NAMESPACE: "metadata.namespace" });
    // the token file the args point at is where the Secret is mounted
    const tokenArg = c.args?.find((a) => a.startsWith("--push-token-file="))?.split("=")[1];
    const mount = c.volumeMounts?.find((m) => tokenArg?.startsWith(`${m.mountPath}/`));
    expect(mount).toBeDefined();
    const vol = pod.volumes?.find((v) => v.name === mount!.name);
    expect(vol?.secret?.secretName).toBe("edgelb-push-token");
  });

  it("caps the V8 heap well inside the memory limit, so the GC works before the kernel kills the pod", () => {
    const c = deployment(docs).spec!.template.spec!.containers[0] as V1Container;
    const nodeOptions = c.env?.find((e) => e.name === "NODE_OPTIONS")?.value ?? "";
    const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions)?.[1]);
    const limit = /^(\d+)(Mi|Gi)$/.exec(String(c.resources?.limits?.memory));
    expect(limit, "memory limit in Mi or Gi").not.toBeNull();
    const limitMiB = Number(limit![1]) * (limit![2] === "Gi" ? 1024 : 1);
    expect(heapMiB).toBeGreaterThan(0);
    // ~130 MiB of the agent's RSS is not V8 heap (Node, code, client-node): see the sizing note.
    expect(limitMiB - heapMiB).toBeGreaterThanOrEqual(160);
  });

  it("runs Node with the image's options (the same heap cap the sizing rule is about)", () => {
    const c = deployment(docs).spec!.template.spec!.containers[0] as V1Container;
    const nodeOptions = c.env?.find((e) => e.name === "NODE_OPTIONS")?.value ?? "";
    const image = /^ENV\s+NODE_OPTIONS=(?:"([^"]*)"|(\S+))/m.exec(readFileSync(join(DEPLOY_DIR, "..", "Dockerfile"), "utf8"));
    expect(nodeOptions).toBe(image?.[1] ?? image?.[2]);
    // What V8 itself will allow with them: the old-space cap is in force.
    const limitMiB = Number(
      execFileSync(process.execPath, ["-p", "require('node:v8').getHeapStatistics().heap_size_limit / 2 ** 20"], {
        encoding: "utf8",
        env: { ...process.env, NODE_OPTIONS: nodeOptions },
      }),
    );
    const oldMiB = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions)?.[1]);
    expect(oldMiB).toBeGreaterThan(0);
    // The young generation bounded by the options, not by the Node release: Node 24's default adds 192 MiB
    // beside the old space (Node 20's 48 MiB), which would not fit the sizing rule's ~190 MiB of headroom.
    expect(nodeOptions).toMatch(/--max-semi-space-size=8\b/);
    expect(limitMiB).toBeGreaterThanOrEqual(oldMiB);
    expect(limitMiB - oldMiB).toBeLessThanOrEqual(64);
  });
});

describe("the Deployment's command line", () => {
  it("is accepted by the agent's real CLI and means what the manifests assume", async () => {
    const c = deployment(docs).spec!.template.spec!.containers[0]!;
    // --cluster has no default: it comes from a ConfigMap the pod cannot start without.
    const clusterEnv = c.env?.find((e) => e.name === "EDGELB_CLUSTER");
    expect(clusterEnv?.valueFrom?.configMapKeyRef).toEqual({ name: "edgelb-cluster", key: "name", optional: false });
    expect(c.args?.some((a) => a.startsWith("--cluster"))).toBe(false);
    const parse = async (env: Record<string, string>) => {
      // the Secret is mounted at run time; stand in a file for it
      const dir = mkdtempSync(join(tmpdir(), "edgelb-deploy-"));
      const args = (c.args ?? []).map((a) => (a.startsWith("--push-token-file=") ? `--push-token-file=${join(dir, "token")}` : a));
      writeFileSync(join(dir, "token"), "t0ken\n");
      let config: AgentConfig | undefined;
      const program = buildProgram({ run: async (cfg) => void (config = cfg), env: {} });
      addCitizenOptions(program);
      quietErrors(program);
      // commander reads option environment variables from process.env
      const saved = process.env.EDGELB_CLUSTER;
      delete process.env.EDGELB_CLUSTER;
      Object.assign(process.env, env);
      try {
        await program.parseAsync(["node", "edgelb-sync-agent", ...args]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        if (saved === undefined) delete process.env.EDGELB_CLUSTER;
        else process.env.EDGELB_CLUSTER = saved;
      }
      return { config, program };
    };
    // Without the ConfigMap's value the agent refuses to start, and says why.
    await expect(parse({})).rejects.toThrow(/--cluster is required \(or EDGELB_CLUSTER\)/);
    const { config, program } = await parse({ EDGELB_CLUSTER: "home" });
    expect(config).toMatchObject({ cluster: "home", sink: "worker", pushToken: "t0ken", logFormat: "json" });
    const citizen = resolveCitizenConfig(program.opts<CitizenFlags>(), { POD_NAMESPACE: "edgelb" }, { dryRun: false });
    expect(citizen).toMatchObject({ metricsAddress: ":9090", leaderElect: true, leaseName: DEFAULT_LEASE_NAME });
  });

  it("the cluster-name example is the ConfigMap the Deployment requires, and is not applied", () => {
    const cm = loadYaml<{ kind: string; metadata: { name: string; namespace: string }; data: Record<string, string> }>(
      readFileSync(join(DEPLOY_DIR, "cluster.example.yaml"), "utf8"),
    );
    const ref = deployment(docs).spec!.template.spec!.containers[0]!.env!.find((e) => e.name === "EDGELB_CLUSTER")!.valueFrom!.configMapKeyRef!;
    expect(cm).toMatchObject({ kind: "ConfigMap", metadata: { name: ref.name, namespace: "edgelb" } });
    expect(Object.keys(cm.data)).toEqual([ref.key]);
    expect(docs.some((d) => d.kind === "ConfigMap")).toBe(false);
  });

  it("the Secret example has the key the Deployment reads", () => {
    const secret = loadYaml<{ metadata: { name: string }; stringData: Record<string, string> }>(readFileSync(join(DEPLOY_DIR, "secret.example.yaml"), "utf8"));
    const c = deployment(docs).spec!.template.spec!.containers[0]!;
    const file = c.args!.find((a) => a.startsWith("--push-token-file="))!.split("=")[1]!;
    expect(Object.keys(secret.stringData)).toContain(file.split("/").at(-1));
    expect(secret.metadata.name).toBe("edgelb-push-token");
  });
});

describe("NetworkPolicy", () => {
  it("lets in only the metrics port, and lets out only DNS, the API server, the edge and the health checks", () => {
    const np = find<V1NetworkPolicy>(docs, "NetworkPolicy");
    const d = deployment(docs);
    expect(np.spec?.podSelector?.matchLabels).toEqual(d.spec?.selector.matchLabels);
    expect(np.spec?.policyTypes).toEqual(["Ingress", "Egress"]);
    // ingress: the named metrics port, from anywhere (Prometheus, the kubelet), nothing else
    expect(np.spec?.ingress).toEqual([{ ports: [{ port: "metrics", protocol: "TCP" }] }]);
    const c = d.spec!.template.spec!.containers[0]!;
    expect(c.ports?.map((p) => p.name)).toEqual(["metrics"]);
    // egress: every rule names its ports (a rule without ports would allow everything)
    const egress = np.spec?.egress ?? [];
    const open = egress.flatMap((r) => r.ports ?? []).map((p) => `${p.protocol}/${p.port}${p.endPort ? `-${p.endPort}` : ""}`);
    for (const r of egress) expect(r.ports?.length, "egress rule without ports").toBeGreaterThan(0);
    expect(open.sort()).toEqual(["TCP/10256", "TCP/30000-32767", "TCP/443", "TCP/53", "TCP/6443", "UDP/53"].sort());
    // the health-check port the agent uses by default is among them
    expect(open).toContain(`TCP/${DEFAULTS.health.healthzPort}`);
  });
});
