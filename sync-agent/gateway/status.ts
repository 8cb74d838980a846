// Writes what resolve.ts decided into GatewayClass, Gateway and HTTPRoute
// status. The plan is pure (cached objects + resolution → patches); only what
// differs is patched, through the /status subresource, as a JSON merge patch
// carrying the cached resourceVersion: if anyone wrote the object since we
// read it, the server answers 409 and the next evaluation plans again from
// the fresh cache. Only our GatewayClasses and their Gateways are touched,
// and in an HTTPRoute only the status.parents entries with our controllerName:
// another controller's entries are copied exactly as found.
import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import { isDeepStrictEqual } from "node:util";
import type { Logger } from "pino";
import { describeError } from "../informers/guarded.ts";
import type { GatewayResolution } from "./resolve.ts";
import { CONTROLLER_NAME, GATEWAY_GROUP, type Condition, type GatewayCaches, type ListenerStatus, type RouteParentStatus } from "./types.ts";

export interface StatusPatch {
  /** kind namespace/name, for logs and the in-flight guard. */
  key: string;
  plural: "gatewayclasses" | "gateways" | "httproutes";
  namespace?: string;
  name: string;
  resourceVersion: string;
  status: Record<string, unknown>;
  /** One line on what changed, for the log. */
  summary: string;
}

/**
 * Our conditions merged into the stored ones: other types stay where they
 * are; a condition whose status did not change keeps its lastTransitionTime.
 */
export function mergeConditions(current: readonly Condition[] | undefined, desired: readonly Condition[], now: string): Condition[] {
  const cur = Array.isArray(current) ? current : [];
  const want = new Map(desired.map((c) => [c.type, c]));
  const stamp = (c: Condition): Condition => {
    const old = cur.find((o) => o?.type === c.type);
    return { ...c, lastTransitionTime: old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : now };
  };
  const out: Condition[] = [];
  for (const c of cur) {
    const w = want.get(c?.type);
    if (!w) out.push(c);
    else {
      out.push(stamp(w));
      want.delete(c.type);
    }
  }
  for (const w of want.values()) out.push(stamp(w));
  return out;
}

/** Whether the edge has the routes: the last push succeeded (confirmed), or why not. */
export interface EdgeState {
  confirmed: boolean;
  error?: string | undefined;
  /**
   * This replica does not know yet what the edge holds (stored snapshot not
   * read since it started or took the lease). Programmed True as found stays:
   * the previous leader computed it, and nothing here says otherwise.
   */
  unknown?: boolean;
}

/** Programmed True only once the edge accepted a snapshot: until then (or after a failed push) False, Pending, with why. */
function programmedAtEdge(conditions: readonly Condition[], edge: EdgeState | undefined, found: readonly Condition[] | undefined): Condition[] {
  if (!edge || edge.confirmed) return [...conditions];
  if (edge.unknown && (Array.isArray(found) ? found : []).some((c) => c?.type === "Programmed" && c.status === "True")) return [...conditions];
  const message = `waiting for the edge to accept the snapshot${edge.error ? `: ${edge.error.slice(0, 300)}` : ""}`;
  return conditions.map((c) => (c.type === "Programmed" && c.status === "True" ? { ...c, status: "False", reason: "Pending", message } : c));
}

const summary = (conditions: readonly Condition[]) => conditions.map((c) => `${c.type} ${c.status} ${c.reason}`).join("; ");

export function planGatewayStatus(res: GatewayResolution, caches: GatewayCaches, now: string, controllerName = CONTROLLER_NAME, edge?: EdgeState): StatusPatch[] {
  const patches: StatusPatch[] = [];
  for (const gc of caches.gatewayClasses) {
    const name = gc.metadata?.name ?? "";
    const desired = res.classes.get(name);
    if (!desired || gc.spec?.controllerName !== controllerName) continue;
    const conditions = mergeConditions(gc.status?.conditions, desired, now);
    if (isDeepStrictEqual(conditions, gc.status?.conditions)) continue;
    patches.push({ key: `GatewayClass ${name}`, plural: "gatewayclasses", name, resourceVersion: gc.metadata?.resourceVersion ?? "", status: { conditions }, summary: summary(desired) });
  }
  for (const gw of caches.gateways) {
    const ns = gw.metadata?.namespace ?? "";
    const name = gw.metadata?.name ?? "";
    const desired = res.gateways.get(`${ns}/${name}`);
    if (!desired) continue; // not of one of our classes: left exactly as found
    const current = gw.status ?? {};
    const listeners: ListenerStatus[] = (desired.listeners ?? []).map((l) => {
      const old = (Array.isArray(current.listeners) ? current.listeners : []).find((o) => o?.name === l.name);
      return { ...l, conditions: mergeConditions(old?.conditions, programmedAtEdge(l.conditions, edge, old?.conditions), now) };
    });
    const wanted = programmedAtEdge(desired.conditions ?? [], edge, current.conditions);
    const status = {
      addresses: desired.addresses ?? [],
      conditions: mergeConditions(current.conditions, wanted, now),
      listeners,
    };
    const same = isDeepStrictEqual(status.addresses, current.addresses ?? []) && isDeepStrictEqual(status.conditions, current.conditions) && isDeepStrictEqual(status.listeners, current.listeners ?? []);
    if (same) continue;
    patches.push({
      key: `Gateway ${ns}/${name}`,
      plural: "gateways",
      namespace: ns,
      name,
      resourceVersion: gw.metadata?.resourceVersion ?? "",
      status,
      summary: `${summary(wanted)}; attachedRoutes ${listeners.map((l) => `${l.name}=${l.attachedRoutes}`).join(", ")}`,
    });
  }
  for (const route of caches.httpRoutes) {
    const ns = route.metadata?.namespace ?? "";
    const name = route.metadata?.name ?? "";
    const desired = res.routes.get(`${ns}/${name}`) ?? [];
    const current: RouteParentStatus[] = Array.isArray(route.status?.parents) ? route.status.parents : [];
    const remaining = [...desired];
    const take = (ref: unknown) => {
      const i = remaining.findIndex((d) => isDeepStrictEqual(d.parentRef, ref));
      return i < 0 ? undefined : remaining.splice(i, 1)[0];
    };
    // Walk the stored list: others' entries stay in place untouched; ours are replaced or dropped.
    const parents: RouteParentStatus[] = [];
    for (const p of current) {
      if (p?.controllerName !== controllerName) {
        parents.push(p);
        continue;
      }
      const d = take(p.parentRef);
      if (d) parents.push({ ...d, conditions: mergeConditions(p.conditions, d.conditions, now) });
    }
    for (const d of remaining) parents.push({ ...d, conditions: mergeConditions(undefined, d.conditions, now) });
    if (isDeepStrictEqual(parents, current)) continue;
    patches.push({
      key: `HTTPRoute ${ns}/${name}`,
      plural: "httproutes",
      namespace: ns,
      name,
      resourceVersion: route.metadata?.resourceVersion ?? "",
      status: { parents },
      summary: desired.length ? desired.map((d) => `${d.parentRef.namespace ?? ns}/${d.parentRef.name}${d.parentRef.sectionName ? `/${d.parentRef.sectionName}` : ""}: ${summary(d.conditions)}`).join(" | ") : "no longer attached to an edgelb Gateway: our entries removed",
    });
  }
  return patches;
}

export interface GatewayStatusWriterOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  /** Ask for another evaluation (after a failed write). */
  retry: () => void;
  controllerName?: string;
  version?: string;
  now?: () => Date;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** Applies status plans one at a time; a newer plan replaces a waiting one (level-triggered). */
export class GatewayStatusWriter {
  private readonly api: CustomObjectsApi;
  private running = false;
  private next: { res: GatewayResolution; caches: GatewayCaches; edge: EdgeState | undefined } | undefined;
  /** Patches sent and not yet seen in the cache: key → resourceVersion they were based on + body. */
  private readonly sent = new Map<string, { rv: string; body: string }>();
  private retryTimer: NodeJS.Timeout | undefined;
  writes = 0;
  conflicts = 0;

  constructor(private readonly opts: GatewayStatusWriterOptions) {
    this.api = opts.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /** edge: whether the edge has the snapshot (Programmed follows it); undefined: not known, trusted. */
  update(res: GatewayResolution, caches: GatewayCaches, edge?: EdgeState): void {
    this.next = { res, caches, edge };
    if (!this.running) void this.drain();
  }

  /** Resolves when nothing is pending (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await new Promise((r) => setTimeout(r, 5));
  }

  stop(): void {
    clearTimeout(this.retryTimer);
    this.next = undefined;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.next) {
        const { res, caches, edge } = this.next;
        this.next = undefined;
        const now = (this.opts.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, "Z");
        for (const p of planGatewayStatus(res, caches, now, this.opts.controllerName, edge)) await this.apply(p);
      }
    } finally {
      this.running = false;
    }
  }

  private async apply(p: StatusPatch): Promise<void> {
    const body = JSON.stringify(p.status);
    const sent = this.sent.get(p.key);
    if (sent && sent.rv === p.resourceVersion && sent.body === body) return; // our write has not reached the cache yet
    const patch = { metadata: { resourceVersion: p.resourceVersion }, status: p.status };
    const version = this.opts.version ?? "v1";
    try {
      if (p.namespace === undefined) {
        await this.api.patchClusterCustomObjectStatus({ group: GATEWAY_GROUP, version, plural: p.plural, name: p.name, body: patch }, mergePatch);
      } else {
        await this.api.patchNamespacedCustomObjectStatus({ group: GATEWAY_GROUP, version, namespace: p.namespace, plural: p.plural, name: p.name, body: patch }, mergePatch);
      }
      this.sent.set(p.key, { rv: p.resourceVersion, body });
      if (this.sent.size > 10_000) this.sent.delete(this.sent.keys().next().value!);
      this.writes++;
      this.opts.log.info({ object: p.key, status: p.status }, `${p.key}: status written (${p.summary})`);
    } catch (err) {
      this.sent.delete(p.key);
      if (err instanceof ApiException && err.code === 409) {
        // Someone wrote it since our cache saw it: the watch brings the new version and a new evaluation.
        this.conflicts++;
        this.opts.log.debug({ object: p.key }, `${p.key}: status write conflicted (409); re-planning from the fresh cache`);
        return;
      }
      if (err instanceof ApiException && err.code === 404) return; // deleted meanwhile
      this.opts.log.warn({ object: p.key, err: describeError(err) }, `${p.key}: status write failed (${describeError(err)}); retrying`);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.opts.retry(), 5_000);
      this.retryTimer.unref?.();
    }
  }
}
