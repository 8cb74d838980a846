// A simulated cluster for the citizen suites: C's fake API server, a
// kubeconfig per client (optionally through a recording/partitionable proxy),
// and kubectl pointed at it.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, KubeConfig, type V1Service } from "@kubernetes/client-node";
import { ApiServer } from "../../lab/cluster/api/server.ts";
import { writeKubeconfig } from "../../lab/cluster/api/kubeconfig.ts";
import { startApiProxy, type ApiProxy } from "./api-proxy.ts";

const run = promisify(execFile);

export interface SimCluster {
  api: ApiServer;
  /** A kubeconfig file path for `server` (default: the API server itself). */
  kubeconfigPath(server?: string): string;
  kubeConfig(server?: string): KubeConfig;
  core: CoreV1Api;
  /** A proxy in front of the API server for one client. */
  proxy(): Promise<ApiProxy>;
  kubectl(...args: string[]): Promise<string>;
  createService(ns: string, name: string, extra?: Partial<V1Service["spec"]> & { annotations?: Record<string, string> }): Promise<V1Service>;
  close(): Promise<void>;
}

export async function startSimCluster(): Promise<SimCluster> {
  const api = await ApiServer.start({ namespaces: ["default", "kube-system", "edgelb", "shop"] });
  const dir = mkdtempSync(join(tmpdir(), "edgelb-citizen-"));
  const proxies: ApiProxy[] = [];
  let n = 0;
  const kubeconfigPath = (server = api.url) => writeKubeconfig({ server, path: join(dir, `kubeconfig-${n++}`) });
  const kubeConfig = (server = api.url) => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath(server));
    return kc;
  };
  const core = kubeConfig().makeApiClient(CoreV1Api);
  const mainKubeconfig = kubeconfigPath();
  return {
    api,
    kubeconfigPath,
    kubeConfig,
    core,
    async proxy() {
      const p = await startApiProxy(api.url);
      proxies.push(p);
      return p;
    },
    async kubectl(...args) {
      const { stdout } = await run("kubectl", ["--kubeconfig", mainKubeconfig, ...args], {
        timeout: 20_000,
        env: { ...process.env, KUBECACHEDIR: join(dir, "cache"), HOME: dir },
      });
      return stdout;
    },
    createService(ns, name, extra = {}) {
      const { annotations, ...spec } = extra;
      return core.createNamespacedService({
        namespace: ns,
        body: {
          metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
          spec: { type: "LoadBalancer", selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }], ...spec },
        },
      });
    },
    async close() {
      await Promise.all(proxies.map((p) => p.close()));
      await api.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function until<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 25): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
