// Kubernetes Events on Services, with the reasons users know from the
// upstream service controller. Recording never blocks the controller: Events
// are queued, correlated (see correlator.ts) and written one at a time.
import { ApiException, CoreV1Api, PatchStrategy, setHeaderOptions, type CoreV1Event, type KubeConfig } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { EventCorrelator, type CorrelatorOptions, type EventInput, type EventType, type ObjectRef } from "./correlator.ts";

export type { EventType, ObjectRef } from "./correlator.ts";

/** Reasons and messages as the upstream service controller uses them. */
export const Reasons = {
  EnsuringLoadBalancer: "EnsuringLoadBalancer",
  EnsuredLoadBalancer: "EnsuredLoadBalancer",
  UpdatedLoadBalancer: "UpdatedLoadBalancer",
  DeletedLoadBalancer: "DeletedLoadBalancer",
  SyncLoadBalancerFailed: "SyncLoadBalancerFailed",
  UnAvailableLoadBalancer: "UnAvailableLoadBalancer",
} as const;
export type Reason = (typeof Reasons)[keyof typeof Reasons];

export const COMPONENT = "edgelb-sync-agent";

/** Where Events go: the API (kubeEventSink) or anything else in tests. */
export interface EventSink {
  create(namespace: string, event: CoreV1Event): Promise<CoreV1Event>;
  /** Bumps count / lastTimestamp / message; throws EventGone on 404. */
  patch(namespace: string, name: string, patch: Partial<CoreV1Event>): Promise<void>;
}

export class EventGone extends Error {
  override name = "EventGone";
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export function kubeEventSink(kc: KubeConfig): EventSink {
  const api = kc.makeApiClient(CoreV1Api);
  return {
    create: (namespace, body) => api.createNamespacedEvent({ namespace, body }),
    async patch(namespace, name, body) {
      try {
        await api.patchNamespacedEvent({ name, namespace, body }, mergePatch);
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) throw new EventGone(`event ${namespace}/${name} is gone`);
        throw err;
      }
    },
  };
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** reportingInstance: the pod identity. */
  instance: string;
  /** Node or host name for source.host. */
  host?: string;
  correlator?: Partial<CorrelatorOptions>;
  logger?: Logger;
  now?: () => number;
  /** Checked right before each write: queued Events are dropped once this says no (leadership lost). */
  canWrite?: () => boolean;
  /** Called once per outcome, e.g. for metrics. */
  onOutcome?: (reason: string, result: "created" | "updated" | "dropped" | "error") => void;
}

export class EventRecorder {
  private readonly sink: EventSink;
  private readonly correlator: EventCorrelator;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly opts: EventRecorderOptions;
  private queue: EventInput[] = [];
  private draining: Promise<void> | null = null;
  private seq = 0;
  private dropsLogged = new Set<string>();

  constructor(opts: EventRecorderOptions) {
    this.opts = opts;
    this.sink = opts.sink;
    this.correlator = new EventCorrelator(opts.correlator);
    this.log = (opts.logger ?? pino({ level: "silent" })).child({ component: "events" });
    this.now = opts.now ?? Date.now;
  }

  /** Queues an Event on the object; never throws, never waits for the API. */
  record(ref: ObjectRef, type: EventType, reason: Reason | string, message: string): void {
    this.queue.push({ ref, type, reason, message });
    // Bound memory if the API server is unreachable for long.
    if (this.queue.length > 1000) this.queue.splice(0, this.queue.length - 1000);
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
  }

  /** Resolves when everything recorded so far has been written (or given up on). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    for (let ev = this.queue.shift(); ev; ev = this.queue.shift()) {
      await this.write(ev);
    }
  }

  private async write(ev: EventInput): Promise<void> {
    if (this.opts.canWrite && !this.opts.canWrite()) {
      this.opts.onOutcome?.(ev.reason, "dropped");
      return;
    }
    const now = this.now();
    const c = this.correlator.correlate(ev, now);
    const where = `${ev.ref.namespace}/${ev.ref.name}`;
    if (c.action === "drop") {
      this.opts.onOutcome?.(ev.reason, "dropped");
      const k = `${where}\u0000${ev.reason}`;
      if (!this.dropsLogged.has(k)) {
        this.dropsLogged.add(k);
        this.log.debug({ service: where, reason: ev.reason }, "event rate-limited");
      }
      return;
    }
    this.dropsLogged.delete(`${where}\u0000${ev.reason}`);
    const ts = new Date(now);
    try {
      if (c.action === "patch") {
        try {
          await this.sink.patch(ev.ref.namespace, c.name, { count: c.count, lastTimestamp: ts, message: c.message });
          this.opts.onOutcome?.(ev.reason, "updated");
          return;
        } catch (err) {
          if (!(err instanceof EventGone)) throw err;
          this.correlator.forget(c.key);
          const again = this.correlator.correlate(ev, now);
          if (again.action !== "create") return;
          return await this.create(ev, again.key, again.message, ts);
        }
      }
      await this.create(ev, c.key, c.message, ts);
    } catch (err) {
      if (c.action === "create") this.correlator.forget(c.key);
      this.opts.onOutcome?.(ev.reason, "error");
      this.log.warn({ service: where, reason: ev.reason, err: (err as Error).message }, `could not write a ${ev.reason} Event on service ${where}: ${(err as Error).message}`);
    }
  }

  private async create(ev: EventInput, key: string, message: string, ts: Date): Promise<void> {
    // Unique like client-go's "<object>.<unix nanos in hex>".
    const nanos = BigInt(ts.getTime()) * 1_000_000n + BigInt(this.seq++ % 1_000_000);
    const body: CoreV1Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${ev.ref.name}.${nanos.toString(16)}`, namespace: ev.ref.namespace },
      involvedObject: {
        kind: ev.ref.kind ?? "Service",
        apiVersion: ev.ref.apiVersion ?? "v1",
        namespace: ev.ref.namespace,
        name: ev.ref.name,
        ...(ev.ref.uid ? { uid: ev.ref.uid } : {}),
        ...(ev.ref.resourceVersion ? { resourceVersion: ev.ref.resourceVersion } : {}),
      },
      reason: ev.reason,
      message,
      type: ev.type,
      count: 1,
      firstTimestamp: ts,
      lastTimestamp: ts,
      source: { component: COMPONENT, ...(this.opts.host ? { host: this.opts.host } : {}) },
      reportingComponent: `edgelb.dev/${COMPONENT}`,
      reportingInstance: this.opts.instance,
    };
    const created = await this.sink.create(ev.ref.namespace, body);
    this.correlator.created(key, created.metadata?.name ?? body.metadata!.name!);
    this.opts.onOutcome?.(ev.reason, "created");
  }
}
