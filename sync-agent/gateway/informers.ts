// Caches of the Gateway API kinds, started only when the cluster serves them.
// An agent in a cluster without the Gateway API CRDs runs exactly as before:
// it asks discovery once at start, then again every `recheckMs`; when the CRDs
// appear it starts watching and says so in the log. Until the first discovery
// answer the caches count as not synced, so the first snapshot never misses
// routes that were there all along.
import { ApiException, ApiextensionsV1Api, ApisApi, CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { describeError, GuardedInformer } from "../informers/guarded.ts";
import type { BackoffOptions } from "../sinks/retry.ts";
import { BUNDLE_VERSION_ANNOTATION, JUDGED_CRDS, type CrdBundles } from "./versions.ts";
import { GATEWAY_GROUP, type GatewayCaches, type GatewayClass, type Gateway, type HTTPRoute, type ReferenceGrant } from "./types.ts";

export interface GatewayInformersOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  onChange: (reason: string) => void;
  backoff?: BackoffOptions;
  resyncMs?: number;
  /** How often discovery is asked again while the CRDs are missing (default 60 s). */
  recheckMs?: number;
}

/** Which versions serve each kind; undefined when the cluster lacks the core three. */
export interface GatewayDiscovery {
  version: string;
  /** ReferenceGrant: v1 when served, else v1beta1; undefined when not installed (cross-namespace refs are refused). */
  referenceGrantVersion?: string;
}

const CORE = ["gatewayclasses", "gateways", "httproutes"];

type AnyInformer = GuardedInformer<KubernetesObject>;

export class GatewayInformers {
  private informers: { gatewayClasses: AnyInformer; gateways: AnyInformer; httpRoutes: AnyInformer; referenceGrants?: AnyInformer } | undefined;
  private answered = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private missingLogged = false;
  /** The CRDs appeared after the first discovery answer. */
  private lateStart = false;
  private readonly apis: ApisApi;
  private readonly custom: CustomObjectsApi;
  private readonly crdApi: ApiextensionsV1Api;
  /** The installed CRDs' bundle versions, read when found and every 10 rechecks (CRD upgrades are rare; a CRD is large). */
  private bundles: CrdBundles | undefined;
  private versionTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: GatewayInformersOptions) {
    this.apis = opts.kubeConfig.makeApiClient(ApisApi);
    this.custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.crdApi = opts.kubeConfig.makeApiClient(ApiextensionsV1Api);
  }

  /** Watching (the CRDs were found). */
  get active(): boolean {
    return this.informers !== undefined;
  }

  /** Discovery answered, and if the kinds exist, every cache listed once. */
  get synced(): boolean {
    if (!this.answered) return false;
    // CRDs installed while running: the rest of the agent keeps publishing meanwhile.
    return !this.informers || this.lateStart || this.listed();
  }

  private listed(): boolean {
    return this.all().every((i) => i.synced);
  }

  start(): void {
    this.stopped = false;
    void this.check();
  }

  /** The caches, or undefined when the cluster has no Gateway API (the snapshot then has no gateway section). */
  caches(): GatewayCaches | undefined {
    const i = this.informers;
    // Half-listed caches would make routes lose their parents (and statuses their entries).
    if (!i || !this.listed()) return undefined;
    return {
      gatewayClasses: i.gatewayClasses.list() as GatewayClass[],
      gateways: i.gateways.list() as Gateway[],
      httpRoutes: i.httpRoutes.list() as HTTPRoute[],
      referenceGrants: (i.referenceGrants?.list() ?? []) as ReferenceGrant[],
      ...(this.bundles ? { crdBundles: this.bundles } : {}),
    };
  }

  /** Each judged CRD's bundle-version annotation (a CRD that is not installed is left out). */
  async readBundles(): Promise<CrdBundles> {
    const crds: { name: string; bundleVersion: string | undefined }[] = [];
    for (const name of JUDGED_CRDS) {
      try {
        const crd = await this.crdApi.readCustomResourceDefinition({ name });
        const v = crd.metadata?.annotations?.[BUNDLE_VERSION_ANNOTATION];
        crds.push({ name, bundleVersion: typeof v === "string" ? v : undefined });
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) continue;
        return { error: describeError(err) };
      }
    }
    return { crds };
  }

  private async checkVersions(): Promise<void> {
    if (this.stopped) return;
    const next = await this.readBundles();
    if (this.stopped) return;
    const changed = JSON.stringify(next) !== JSON.stringify(this.bundles);
    if (!changed) {
      // nothing to say
    } else if ("error" in next) this.opts.log.warn({ err: next.error }, `Gateway API CRD versions could not be read (${next.error}): GatewayClass SupportedVersion says so; the agent needs get on customresourcedefinitions`);
    else this.opts.log.info({ crds: next.crds }, `Gateway API CRD bundle versions: ${next.crds.map((c) => `${c.name} ${c.bundleVersion ?? "(none)"}`).join(", ")}`);
    this.bundles = next;
    if (changed) this.opts.onChange("gateway-crd-versions");
    this.versionTimer = setTimeout(() => void this.checkVersions(), this.recheckMs * 10);
    this.versionTimer.unref?.();
  }

  /** Asks discovery which Gateway API kinds the cluster serves. */
  async discover(): Promise<GatewayDiscovery | undefined> {
    const groups = await this.apis.getAPIVersions();
    const group = groups.groups.find((g) => g.name === GATEWAY_GROUP);
    if (!group || !group.versions.some((v) => v.version === "v1")) return undefined;
    const v1 = await this.custom.getAPIResources({ group: GATEWAY_GROUP, version: "v1" });
    const names = new Set(v1.resources.map((r) => r.name));
    if (!CORE.every((n) => names.has(n))) return undefined;
    if (names.has("referencegrants")) return { version: "v1", referenceGrantVersion: "v1" };
    if (group.versions.some((v) => v.version === "v1beta1")) {
      const beta = await this.custom.getAPIResources({ group: GATEWAY_GROUP, version: "v1beta1" });
      if (beta.resources.some((r) => r.name === "referencegrants")) return { version: "v1", referenceGrantVersion: "v1beta1" };
    }
    return { version: "v1" };
  }

  private async check(): Promise<void> {
    if (this.stopped || this.informers) return;
    let found: GatewayDiscovery | undefined;
    try {
      found = await this.discover();
    } catch (err) {
      // Discovery failing is not "no Gateway API": ask again soon, keep the rest running.
      this.opts.log.warn({ err: describeError(err) }, `Gateway API discovery failed (${describeError(err)}); asking again in ${Math.round(this.recheckMs / 1000)} s`);
      if (!this.answered) {
        // Do not hold the whole agent's first snapshot on it.
        this.answered = true;
        this.opts.onChange("gateway-api-discovery-failed");
      }
      this.schedule();
      return;
    }
    if (this.stopped) return;
    if (!found) {
      if (!this.missingLogged) {
        this.missingLogged = true;
        this.opts.log.info(
          { group: GATEWAY_GROUP, recheckMs: this.recheckMs },
          `Gateway API CRDs (${GATEWAY_GROUP}/v1 GatewayClass, Gateway, HTTPRoute) not installed: serving LoadBalancer Services only; checking again every ${Math.round(this.recheckMs / 1000)} s`,
        );
      }
      const first = !this.answered;
      this.answered = true;
      if (first) this.opts.onChange("gateway-api-absent");
      this.schedule();
      return;
    }
    this.lateStart = this.answered;
    // Before the first status: the GatewayClass says at once whether these CRDs are supported.
    this.bundles = await this.readBundles();
    if (this.stopped) return;
    this.versionTimer = setTimeout(() => void this.checkVersions(), this.recheckMs * 10);
    this.versionTimer.unref?.();
    this.startInformers(found);
    this.opts.log.info(
      { group: GATEWAY_GROUP, version: found.version, referenceGrant: found.referenceGrantVersion ?? null },
      `Gateway API found (${GATEWAY_GROUP}/${found.version}${found.referenceGrantVersion ? `, ReferenceGrant ${found.referenceGrantVersion}` : ", no ReferenceGrant: cross-namespace backendRefs are refused"}): watching GatewayClasses, Gateways, HTTPRoutes${found.referenceGrantVersion ? ", ReferenceGrants" : ""}${this.missingLogged ? " (the CRDs appeared while running)" : ""}`,
    );
    this.answered = true;
    this.opts.onChange("gateway-api-found");
  }

  private get recheckMs(): number {
    return this.opts.recheckMs ?? 60_000;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.check(), this.recheckMs);
    this.timer.unref?.();
  }

  private informer(plural: string, version: string): AnyInformer {
    return new GuardedInformer<KubernetesObject>({
      resource: plural,
      path: `/apis/${GATEWAY_GROUP}/${version}/${plural}`,
      list: async (ingest) => {
        const list = (await this.custom.listClusterCustomObject({ group: GATEWAY_GROUP, version, plural })) as KubernetesListObject<KubernetesObject>;
        return { ...list, items: (list.items ?? []).map(ingest) };
      },
      kubeConfig: this.opts.kubeConfig,
      log: this.opts.log,
      onChange: this.opts.onChange,
      backoff: this.opts.backoff ?? { initialMs: 500, maxMs: 30_000 },
      resyncMs: this.opts.resyncMs ?? 10 * 60_000,
    });
  }

  private startInformers(found: GatewayDiscovery): void {
    this.informers = {
      gatewayClasses: this.informer("gatewayclasses", found.version),
      gateways: this.informer("gateways", found.version),
      httpRoutes: this.informer("httproutes", found.version),
      ...(found.referenceGrantVersion ? { referenceGrants: this.informer("referencegrants", found.referenceGrantVersion) } : {}),
    };
    for (const i of this.all()) i.start();
  }

  private all(): AnyInformer[] {
    const i = this.informers;
    return i ? [i.gatewayClasses, i.gateways, i.httpRoutes, ...(i.referenceGrants ? [i.referenceGrants] : [])] : [];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.versionTimer);
    await Promise.all(this.all().map((i) => i.stop()));
  }
}
