// Namespaces, for the admins' edgelb.dev/allowed-hostnames annotation. A
// GuardedInformer like the other caches; the agent publishes nothing before it
// has listed once, so a restriction is never missed at start (needs RBAC
// list/watch on namespaces).
import { CoreV1Api, type KubeConfig, type V1Namespace } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { GuardedInformer } from "../informers/guarded.ts";
import { NAMESPACE_SHAPE } from "../informers/strip/index.ts";
import type { BackoffOptions } from "../sinks/retry.ts";

export interface NamespaceInformerOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  onChange: (reason: string) => void;
  backoff?: BackoffOptions;
  resyncMs?: number;
}

export function namespaceInformer(opts: NamespaceInformerOptions): GuardedInformer<V1Namespace> {
  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  return new GuardedInformer<V1Namespace>({
    resource: "namespaces",
    path: "/api/v1/namespaces",
    shape: NAMESPACE_SHAPE,
    list: () => core.listNamespace(),
    kubeConfig: opts.kubeConfig,
    log: opts.log,
    onChange: opts.onChange,
    backoff: opts.backoff ?? { initialMs: 500, maxMs: 30_000 },
    resyncMs: opts.resyncMs ?? 10 * 60_000,
  });
}
