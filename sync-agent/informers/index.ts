// The three caches the desired snapshot is computed from: Nodes, Services and
// EndpointSlices, each behind a GuardedInformer. Nothing is published before
// all three have listed once (`synced`).
import {
  CoreV1Api,
  DiscoveryV1Api,
  Observable,
  ResponseContext,
  type ConfigurationOptions,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1EndpointSlice,
  type V1Node,
  type V1Service,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ClusterState } from "../model/desired.ts";
import type { BackoffOptions } from "../sinks/retry.ts";
import { GuardedInformer, type Ingest } from "./guarded.ts";
import { LABEL_SERVICE_NAME } from "../model/constants.ts";
import { hasSelector, sliceServes } from "../model/endpoints.ts";
import { ENDPOINT_SLICE_SHAPE, NODE_SHAPE, SERVICE_SHAPE, strip, type Shape } from "./strip/index.ts";

export { GuardedInformer, describeError, type Ingest } from "./guarded.ts";
export * from "./strip/index.ts";

export interface ClusterInformersOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  onChange: (reason: string) => void;
  onRestart?: (resource: string, error: unknown, nextAttemptAt: Date) => void;
  backoff?: BackoffOptions;
  resyncMs?: number;
  /** LIST page size; 0 = unpaged. */
  pageSize?: number;
  /** Periodic resyncs only while this says yes (the leader); see GuardedInformer. */
  resyncWhen?: () => boolean;
}

type Page<T extends KubernetesObject> = (cont: string | undefined, limit: number | undefined) => Promise<KubernetesListObject<T>>;

/**
 * Follows `continue` tokens so a large cluster lists in pages of one
 * consistent snapshot, ingesting (stripping) each page as it arrives: only one
 * page of full objects is alive at a time.
 */
function paged<T extends KubernetesObject>(page: Page<T>, pageSize: number): (ingest: Ingest<T>) => Promise<KubernetesListObject<T>> {
  return async (ingest) => {
    const first = await page(undefined, pageSize || undefined);
    const items = first.items.map(ingest);
    let cont = first.metadata?._continue;
    first.items = [];
    while (cont) {
      const next = await page(cont, pageSize || undefined);
      for (const item of next.items) items.push(ingest(item));
      cont = next.metadata?._continue;
    }
    return { ...first, items, metadata: { ...first.metadata, _continue: undefined } } as KubernetesListObject<T>;
  };
}

/**
 * Whether each Cluster-policy Service had a serving endpoint when last asked:
 * its slices change with every pod, but only "some endpoint serves" ↔ "none
 * does" can change the snapshot (empty endpoints → the edge answers 503).
 */
export class ServingMemo {
  private readonly last = new Map<string, boolean>();

  /** Did the Service's serving state change since the last call for it (first call: yes)? */
  changed(id: string, slicesNow: readonly V1EndpointSlice[]): boolean {
    if (slicesNow.length === 0) {
      // Its last slice went (the Service was deleted, or never had any): forget it.
      this.last.delete(id);
      return true;
    }
    const serving = slicesNow.some(sliceServes);
    const before = this.last.get(id);
    this.last.set(id, serving);
    return before !== serving;
  }

  /**
   * Before every evaluation: what it will see, per Service. The memo must be
   * the serving state last *evaluated*, not the last one an event filter saw:
   * a re-list, or a Service that was Local (or selector-less) while it went
   * to 0 and is Cluster again, changes what the snapshot says without passing
   * through changed(); a memo left at "serving" would then drop the pod that
   * comes back, and the edge would keep answering 503 with ready pods.
   */
  rebuild(slices: readonly V1EndpointSlice[]): void {
    this.last.clear();
    for (const slice of slices) {
      const name = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
      if (!name) continue;
      const id = `${slice.metadata?.namespace ?? "default"}/${name}`;
      if (!this.last.get(id)) this.last.set(id, sliceServes(slice));
    }
  }
}

/** What endpointsMatter reads: the Service cache, and the slice cache of one namespace. */
export interface EndpointsView {
  service(name: string, namespace: string | undefined): V1Service | undefined;
  slices(namespace: string | undefined): readonly V1EndpointSlice[];
}

/**
 * Could this EndpointSlice change the snapshot or a status? Unknown Service:
 * yes. Neither LoadBalancer nor NodePort: no. Local: yes (its nodes are the backends). Cluster with a selector: only
 * when the Service gains its first or loses its last serving endpoint. Cluster
 * without a selector (manually managed endpoints): no, every node serves it.
 */
export function endpointsMatter(view: EndpointsView, memo: ServingMemo, slice: V1EndpointSlice): boolean {
  const name = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
  if (!name) return false; // not a Service's slice: the model ignores it
  const namespace = slice.metadata?.namespace;
  const svc = view.service(name, namespace);
  if (!svc) return true;
  // Only a LoadBalancer, or a NodePort (an HTTPRoute backend), can be in the snapshot: the
  // slices of ClusterIP/headless/ExternalName Services (Jobs, scale-to-zero apps…) never matter.
  if (svc.spec?.type !== "LoadBalancer" && svc.spec?.type !== "NodePort") return false;
  if (svc.spec?.externalTrafficPolicy === "Local") return true;
  if (!hasSelector(svc)) return false;
  const mine = view.slices(namespace).filter((s) => s.metadata?.labels?.[LABEL_SERVICE_NAME] === name);
  return memo.changed(`${namespace ?? "default"}/${name}`, mine);
}

/**
 * client-node turns every LIST item into class instances (twice the CPU of
 * parsing the JSON, for a 15 KB Node) before we could strip it. This response
 * middleware strips the items in the parsed JSON first, so client-node only
 * deserialises what we keep.
 */
export function stripListItems(shape: Shape): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx) => new Observable(Promise.resolve(ctx)),
        post: (res) =>
          new Observable(
            (async () => {
              if (res.httpStatusCode !== 200) return res;
              const list = JSON.parse(await res.body.text()) as { items?: unknown[] };
              if (Array.isArray(list.items)) list.items = list.items.map((i) => strip(shape, i));
              const text = JSON.stringify(list);
              return new ResponseContext(res.httpStatusCode, res.headers, { text: async () => text, binary: async () => Buffer.from(text) });
            })(),
          ),
      },
    ],
    middlewareMergeStrategy: "append",
  };
}

export class ClusterInformers {
  readonly nodes: GuardedInformer<V1Node>;
  readonly services: GuardedInformer<V1Service>;
  readonly endpointSlices: GuardedInformer<V1EndpointSlice>;
  private readonly serving = new ServingMemo();
  private readonly endpointsView: EndpointsView = {
    service: (name, namespace) => this.services.get(name, namespace),
    slices: (namespace) => this.endpointSlices.list(namespace),
  };

  constructor(opts: ClusterInformersOptions) {
    const core = opts.kubeConfig.makeApiClient(CoreV1Api);
    const discovery = opts.kubeConfig.makeApiClient(DiscoveryV1Api);
    const common = {
      kubeConfig: opts.kubeConfig,
      log: opts.log,
      onChange: (reason: string) => {
        this.serving.rebuild(this.endpointSlices?.list() ?? []);
        opts.onChange(reason);
      },
      ...(opts.onRestart ? { onRestart: opts.onRestart } : {}),
      backoff: opts.backoff ?? { initialMs: 500, maxMs: 30_000 },
      resyncMs: opts.resyncMs ?? 10 * 60_000,
      resyncWhen: opts.resyncWhen,
    };
    const size = opts.pageSize ?? 500;
    this.nodes = new GuardedInformer<V1Node>({
      ...common,
      resource: "nodes",
      path: "/api/v1/nodes",
      shape: NODE_SHAPE,
      list: paged((c, limit) => core.listNode({ _continue: c, limit }, stripListItems(NODE_SHAPE)), size),
    });
    this.services = new GuardedInformer<V1Service>({
      ...common,
      resource: "services",
      path: "/api/v1/services",
      shape: SERVICE_SHAPE,
      list: paged((c, limit) => core.listServiceForAllNamespaces({ _continue: c, limit }, stripListItems(SERVICE_SHAPE)), size),
    });
    this.endpointSlices = new GuardedInformer<V1EndpointSlice>({
      ...common,
      resource: "endpointslices",
      path: "/apis/discovery.k8s.io/v1/endpointslices",
      shape: ENDPOINT_SLICE_SHAPE,
      // Local Services: every slice change (their nodes are the backends).
      // Cluster ones: kube-proxy spreads traffic itself, so pod churn
      // evaluates nothing; only the first/last serving endpoint does.
      relevant: (slice) => endpointsMatter(this.endpointsView, this.serving, slice),
      list: paged((c, limit) => discovery.listEndpointSliceForAllNamespaces({ _continue: c, limit }, stripListItems(ENDPOINT_SLICE_SHAPE)), size),
    });
  }

  private get all() {
    return [this.nodes, this.services, this.endpointSlices] as const;
  }

  start(): void {
    for (const i of this.all) i.start();
  }

  get synced(): boolean {
    return this.all.every((i) => i.synced);
  }

  async waitForSync(): Promise<void> {
    await Promise.all(this.all.map((i) => i.waitForSync()));
  }

  /** Informer restarts after errors, per resource (for metrics). */
  restarts(): Record<string, number> {
    return Object.fromEntries(this.all.map((i) => [i.resource, i.restarts]));
  }

  resync(): void {
    for (const i of this.all) i.resync();
  }

  /** After becoming leader: the drift repair skipped while standby, if any. */
  resyncIfSkipped(): void {
    for (const i of this.all) i.resyncIfSkipped();
  }

  /**
   * Watch updates per resource: unchanged = nothing the agent reads changed
   * (dropped at the edge); changed = cached with new content; irrelevant =
   * changes cached without an evaluation (EndpointSlices of Cluster Services).
   */
  updates(): Record<string, { unchanged: number; changed: number; irrelevant: number }> {
    return Object.fromEntries(this.all.map((i) => [i.resource, { unchanged: i.unchangedUpdates, changed: i.changedUpdates, irrelevant: i.irrelevantChanges }]));
  }

  state(): ClusterState {
    return {
      nodes: this.nodes.list(),
      services: this.services.list(),
      endpointSlices: this.endpointSlices.list(),
      endpointSlicesSynced: this.endpointSlices.synced,
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((i) => i.stop()));
  }
}
