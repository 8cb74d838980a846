// Writes a kubeconfig for the fake API server that kubectl and
// @kubernetes/client-node load unchanged (plain http URL + bearer token).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface KubeconfigOptions {
  server: string;
  token?: string;
  /** Context/cluster/user name (default "edgelb-sim"). */
  name?: string;
  namespace?: string;
  /** Where to write it; default a fresh temp dir. */
  path?: string;
}

export function kubeconfigYaml(o: KubeconfigOptions): string {
  const name = o.name ?? "edgelb-sim";
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: ${name}`,
    "  cluster:",
    `    server: ${o.server}`,
    // client-node refuses a plain-http server unless TLS verification is off.
    "    insecure-skip-tls-verify: true",
    "users:",
    `- name: ${name}`,
    "  user:",
    ...(o.token ? [`    token: ${JSON.stringify(o.token)}`] : ["    {}"]),
    "contexts:",
    `- name: ${name}`,
    "  context:",
    `    cluster: ${name}`,
    `    user: ${name}`,
    `    namespace: ${o.namespace ?? "default"}`,
    `current-context: ${name}`,
    "",
  ].join("\n");
}

/** Writes the kubeconfig and returns its path. */
export function writeKubeconfig(o: KubeconfigOptions): string {
  const path = o.path ?? join(mkdtempSync(join(tmpdir(), "edgelb-kube-")), "kubeconfig");
  writeFileSync(path, kubeconfigYaml(o), { mode: 0o600 });
  return path;
}
