// Writes a kubeconfig for the fake API server that kubectl and
// @kubernetes/client-node load unchanged (plain http URL + bearer token).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

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

const tempDirs = new Set<string>();
let cleanupRegistered = false;

/**
 * Writes the kubeconfig and returns its path. Without `path` it goes to a
 * fresh temp dir, removed when the process exits (or by removeKubeconfig).
 * In-process clients need no file: KubeConfig.loadFromString(kubeconfigYaml(o)).
 */
export function writeKubeconfig(o: KubeconfigOptions): string {
  let path = o.path;
  if (!path) {
    const dir = mkdtempSync(join(tmpdir(), "edgelb-kube-"));
    tempDirs.add(dir);
    if (!cleanupRegistered) {
      cleanupRegistered = true;
      process.once("exit", () => {
        for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
      });
    }
    path = join(dir, "kubeconfig");
  }
  writeFileSync(path, kubeconfigYaml(o), { mode: 0o600 });
  return path;
}

/** Removes a kubeconfig written to a temp dir by writeKubeconfig (no-op otherwise). */
export function removeKubeconfig(path: string): void {
  const dir = dirname(path);
  if (!tempDirs.delete(dir)) return;
  rmSync(dir, { recursive: true, force: true });
}
