// Renders deploy/ the way a user installs it (`kubectl kustomize deploy/`).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { loadAllYaml, type V1ClusterRole, type V1Deployment, type V1Role } from "@kubernetes/client-node";

export const DEPLOY_DIR = fileURLToPath(new URL("../../deploy/", import.meta.url));

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

export function renderDeploy(): Manifest[] {
  const out = execFileSync("kubectl", ["kustomize", DEPLOY_DIR], { encoding: "utf8", timeout: 30_000 });
  return loadAllYaml(out) as Manifest[];
}

export function find<T>(docs: Manifest[], kind: string, name?: string): T {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  return found[0] as T;
}

export const clusterRole = (docs: Manifest[]) => find<V1ClusterRole>(docs, "ClusterRole");
export const leaseRole = (docs: Manifest[]) => find<V1Role>(docs, "Role");
export const deployment = (docs: Manifest[]) => find<V1Deployment>(docs, "Deployment");
