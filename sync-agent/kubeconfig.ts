// Which cluster to talk to: --kubeconfig if given; else the in-cluster service
// account (the normal case, a Deployment); else $KUBECONFIG; else
// ~/.kube/config — so the same binary runs in a pod and on a laptop.
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

const SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

export interface KubeConfigSource {
  kubeConfig: KubeConfig;
  /** For the startup log: "in-cluster service account", "/home/me/.kube/config". */
  source: string;
}

export function loadKubeConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env): KubeConfigSource {
  const kc = new KubeConfig();
  if (explicit) {
    kc.loadFromFile(explicit);
    return { kubeConfig: kc, source: explicit };
  }
  if (env.KUBERNETES_SERVICE_HOST && existsSync(SA_TOKEN)) {
    kc.loadFromCluster();
    return { kubeConfig: kc, source: "in-cluster service account" };
  }
  if (env.KUBECONFIG) {
    const first = env.KUBECONFIG.split(path.delimiter).find((p) => p && existsSync(p));
    if (first) {
      kc.loadFromFile(first);
      return { kubeConfig: kc, source: first };
    }
  }
  const home = path.join(os.homedir(), ".kube", "config");
  if (existsSync(home)) {
    kc.loadFromFile(home);
    return { kubeConfig: kc, source: home };
  }
  throw new Error("no Kubernetes configuration: not in a cluster, KUBECONFIG unset and ~/.kube/config missing; pass --kubeconfig");
}
