// One cluster, one snapshot. Two clusters deployed from one GitOps base with
// the same --cluster would overwrite each other's snapshot at every push, and
// the edge would flip between them. So every snapshot carries the cluster's
// identity (the kube-system Namespace UID, stable for the cluster's life and
// unique across clusters), and an agent that finds a snapshot of another
// identity under its name refuses to push until told to take it over.
//
// A Sink decorator: reads check the stored identity (and hand the controller
// the snapshot without it, so its content comparison is unchanged); writes
// stamp it.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Snapshot } from "../../../worker/snapshot/schema.ts";
import { SinkError, type HeartbeatResult, type ReadResult, type Sink, type WriteResult } from "../types.ts";

export type Ownership =
  /** The stored snapshot is ours. */
  | "ours"
  /** Nothing stored, or stored before snapshots carried an identity: ours from now on. */
  | "adopt"
  /** Another cluster's, and --take-over says to replace it. */
  | "take-over"
  /** Another cluster's: do not push. */
  | "refuse";

export function ownership(storedId: string | undefined, ourId: string, takeOver: boolean): Ownership {
  if (storedId === undefined) return "adopt";
  if (storedId === ourId) return "ours";
  return takeOver ? "take-over" : "refuse";
}

/** The cluster's identity: the UID of its kube-system Namespace. */
export function kubeSystemUid(kc: KubeConfig): () => Promise<string> {
  const api = kc.makeApiClient(CoreV1Api);
  return async () => {
    const ns = await api.readNamespace({ name: "kube-system" });
    const uid = ns.metadata?.uid;
    if (!uid) throw new Error("namespace kube-system has no metadata.uid");
    return uid;
  };
}

export interface IdentitySinkOptions {
  cluster: string;
  /** Resolves the cluster's identity; retried on the next read until it works. */
  identity: () => Promise<string>;
  /** --take-over: replace a snapshot stored by another cluster under our name. */
  takeOver: boolean;
  /** --dry-run: an unreadable identity is a warning, not a reason to stop (nothing is written anyway). */
  optional?: boolean;
  log: Logger;
}

export class IdentitySink implements Sink {
  readonly description: string;
  private id: string | undefined;
  /** The foreign identity we refused (its fatal line is logged once). */
  private refused: string | undefined;
  private tookOver: string | undefined;
  private skipped = false;

  constructor(
    private readonly inner: Sink,
    private readonly opts: IdentitySinkOptions,
  ) {
    this.description = inner.description;
  }

  /** Our identity once known. */
  get clusterId(): string | undefined {
    return this.id;
  }

  private async ourId(): Promise<string | undefined> {
    if (this.id || this.skipped) return this.id;
    try {
      this.id = await this.opts.identity();
    } catch (err) {
      if (this.opts.optional) {
        this.skipped = true;
        this.opts.log.warn({ err: (err as Error).message }, `cannot read this cluster's identity (namespace kube-system): ${(err as Error).message}; dry run goes on without it`);
        return undefined;
      }
      throw new SinkError(
        `cannot read this cluster's identity (the UID of namespace kube-system): ${(err as Error).message} (the agent needs get on namespaces)`,
        "retryable",
      );
    }
    this.opts.log.info({ clusterId: this.id, cluster: this.opts.cluster }, `cluster identity ${this.id} (kube-system UID)`);
    return this.id;
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    const id = await this.ourId();
    const stored = await this.inner.read(signal);
    if (id === undefined) return stored; // dry run without an identity: nothing to compare
    if (!stored.snapshot) {
      this.refused = undefined;
      return stored;
    }
    const { clusterId: storedId, ...snapshot } = stored.snapshot;
    const c = this.opts.cluster;
    switch (ownership(storedId, id, this.opts.takeOver)) {
      case "refuse": {
        const message =
          `the edge's snapshot for cluster "${c}" belongs to another cluster (identity ${storedId}; this cluster is ${id}): ` +
          `refusing to push. Give this cluster its own --cluster name, or pass --take-over if it replaces that cluster`;
        if (this.refused !== storedId) {
          this.refused = storedId;
          this.opts.log.fatal({ cluster: c, storedClusterId: storedId, clusterId: id }, message);
        }
        throw new SinkError(message, "fatal");
      }
      case "take-over":
        if (this.tookOver !== storedId) {
          this.tookOver = storedId;
          this.opts.log.warn(
            { cluster: c, storedClusterId: storedId, clusterId: id },
            `taking over cluster name "${c}" from cluster ${storedId} (--take-over): the next push replaces its snapshot`,
          );
        }
        this.refused = undefined;
        // Continue its generation, but never count its content as ours: push even if it looks the same.
        return { snapshot: null, generation: stored.generation };
      case "adopt":
      case "ours":
        break;
    }
    this.refused = undefined;
    return { ...stored, snapshot: snapshot as Snapshot };
  }

  async write(snapshot: Snapshot, signal?: AbortSignal): Promise<WriteResult> {
    const id = await this.ourId();
    if (this.refused !== undefined) throw new SinkError(`cluster name "${this.opts.cluster}" belongs to cluster ${this.refused}: push refused`, "fatal");
    return this.inner.write(id === undefined ? snapshot : { ...snapshot, clusterId: id }, signal);
  }

  remove(signal?: AbortSignal): Promise<void> {
    return this.inner.remove(signal);
  }

  async heartbeat(snapshot: Snapshot, signal?: AbortSignal): Promise<HeartbeatResult> {
    if (!this.inner.heartbeat) return { kvWrite: false };
    if (this.refused !== undefined) throw new SinkError(`cluster name "${this.opts.cluster}" belongs to cluster ${this.refused}: heartbeat refused`, "fatal");
    const id = await this.ourId();
    // The same value the last write stored (a kv-api heartbeat rewrites it whole).
    return this.inner.heartbeat(id === undefined ? snapshot : { ...snapshot, clusterId: id }, signal);
  }
}
