// The object store behind the fake API server: one global monotonic
// resourceVersion (like etcd's revision), an event history watchers replay
// from, compaction, finalizers and the /status split. Stored objects are
// treated as immutable so a LIST snapshot can be kept by reference.
import { randomBytes, randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { applyPatch } from "./patch.ts";
import { pruneSchema } from "./openapi/fields.ts";
import { kindPruneSchema, prune, SCHEMAS, type Schema } from "./prune.ts";
import {
  NAMESPACES,
  RESOURCES,
  apiVersionOf,
  decodeTimes,
  resourceKey,
  type ResourceType,
} from "./resources.ts";
import type { Obj } from "./selectors.ts";
import { DEFAULT_NODE_PORT_RANGE, type NodePortRange } from "./service.ts";
import { ApiError, cause, errors, type Subject } from "./status.ts";

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  type: EventType;
  rv: number;
  resource: ResourceType;
  namespace: string;
  /** The object after the change (for DELETED: the last state, with the deletion's rv). */
  object: Obj;
  /** The object before the change (MODIFIED/DELETED). */
  previous?: Obj;
}

export interface WriteOptions {
  subresource?: "status";
  dryRun?: boolean;
  /** Unknown fields: dropped (Ignore), dropped with a warning (Warn, default), or a 400 (Strict). */
  fieldValidation?: "Ignore" | "Warn" | "Strict";
  /** Collects warnings for the response's Warning headers. */
  warnings?: string[];
}

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
  /** Graceful deletion (Pods, with podTermination): 0 removes at once; default the pod's terminationGracePeriodSeconds. */
  gracePeriodSeconds?: number;
}

export interface StoreOptions {
  nodePortRange?: NodePortRange;
  /** Events kept for watch replay before the oldest are compacted automatically. */
  historyLimit?: number;
  /** Namespaces that exist from the start. */
  namespaces?: string[];
  /** First resourceVersion handed out. */
  initialResourceVersion?: number;
  /**
   * Delay before the namespace controller deletes a terminating namespace's
   * content (default 200 ms): deletion is asynchronous on a real cluster, so
   * `kubectl delete -f` of a namespace and its objects works.
   */
  namespaceDrainMs?: number;
  /**
   * Pods bound to a node are deleted gracefully, as upstream: DELETE sets
   * deletionTimestamp and deletionGracePeriodSeconds, and the pod stays
   * (terminating) until its kubelet removes it with grace 0. Only with a
   * kubelet running (the simulated cluster's); default false.
   */
  podTermination?: boolean;
}

interface Snapshot {
  rv: number;
  items: Obj[];
}

const now = () => new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace(".000Z", "Z");

const SYSTEM_META = ["uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name"];

/** Everything but metadata and status: what `generation` tracks. */
function specOf(o: Obj): Obj {
  const { metadata: _m, status: _s, kind: _k, apiVersion: _a, ...rest } = o;
  return rest;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

export class Store {
  private rv: number;
  private compacted = 0;
  private readonly objects = new Map<string, Map<string, Obj>>();
  private history: StoreEvent[] = [];
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private readonly snapshots = new Map<string, Snapshot>();
  readonly nodePortRange: NodePortRange;
  private readonly historyLimit: number;
  private readonly namespaceDrainMs: number;
  readonly podTermination: boolean;

  constructor(opts: StoreOptions = {}) {
    this.rv = opts.initialResourceVersion ?? 100;
    this.nodePortRange = opts.nodePortRange ?? DEFAULT_NODE_PORT_RANGE;
    this.historyLimit = opts.historyLimit ?? 100_000;
    this.namespaceDrainMs = opts.namespaceDrainMs ?? 200;
    this.podTermination = opts.podTermination ?? false;
    for (const r of RESOURCES) this.objects.set(resourceKey(r), new Map());
    for (const ns of opts.namespaces ?? ["default", "kube-system", "kube-public", "kube-node-lease", "edgelb"]) {
      this.create(NAMESPACES, "", { metadata: { name: ns } });
    }
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** Events with rv <= this are gone; watching from an older rv gets 410. */
  get compactedResourceVersion(): number {
    return this.compacted;
  }

  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private bucket(r: ResourceType): Map<string, Obj> {
    return this.objects.get(resourceKey(this.storageOf(r)))!;
  }

  /** The resource whose storage serves `r` (itself, unless `r` is a converted view). */
  storageOf(r: ResourceType): ResourceType {
    return r.storage?.resource ?? r;
  }

  /** A stored object as resource `r` presents it. */
  view(r: ResourceType, o: Obj): Obj {
    return r.storage ? r.storage.fromStorage(o) : o;
  }

  private key(ns: string, name: string): string {
    return `${ns}/${name}`;
  }

  subject(r: ResourceType, name: string): Subject {
    return { group: r.group, plural: r.plural, kind: r.kind, name };
  }

  get(r: ResourceType, ns: string, name: string): Obj {
    const o = this.bucket(r).get(this.key(r.namespaced ? ns : "", name));
    if (!o) throw errors.notFound(this.subject(r, name));
    return structuredClone(this.view(r, o));
  }

  tryGet(r: ResourceType, ns: string, name: string): Obj | undefined {
    const o = this.bucket(r).get(this.key(r.namespaced ? ns : "", name));
    return o ? structuredClone(this.view(r, o)) : undefined;
  }

  /** All objects of a resource (optionally one namespace) in key order, as of now. */
  list(r: ResourceType, ns?: string): { rv: number; items: Obj[] } {
    const items = [...this.bucket(r).entries()]
      .filter(([, o]) => !r.namespaced || !ns || o.metadata.namespace === ns)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => this.view(r, o));
    return { rv: this.rv, items };
  }

  /** Keeps a LIST snapshot so `continue` pages come from the same resourceVersion. */
  saveSnapshot(items: Obj[], rv: number): string {
    const id = randomBytes(8).toString("hex");
    this.snapshots.set(id, { rv, items });
    if (this.snapshots.size > 200) this.snapshots.delete(this.snapshots.keys().next().value!);
    return id;
  }

  loadSnapshot(id: string): Snapshot {
    const s = this.snapshots.get(id);
    if (!s || s.rv < this.compacted) {
      this.snapshots.delete(id);
      throw errors.expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
      );
    }
    return s;
  }

  /** Drops history with rv <= `rv` (default: everything so far). */
  compact(rv = this.rv): void {
    this.compacted = Math.max(this.compacted, Math.min(rv, this.rv));
    this.history = this.history.filter((e) => e.rv > this.compacted);
    for (const [id, s] of this.snapshots) if (s.rv < this.compacted) this.snapshots.delete(id);
  }

  /**
   * Events after `fromRv` for a resource, or a 410 when some of them were
   * compacted away. Callers subscribe in the same tick so nothing falls between.
   */
  eventsSince(r: ResourceType, fromRv: number): StoreEvent[] {
    if (fromRv < this.compacted) {
      throw errors.expired(`too old resource version: ${fromRv} (${this.compacted + 1})`);
    }
    const storage = this.storageOf(r);
    return this.history.filter((e) => e.rv > fromRv && e.resource === storage);
  }

  private commit(e: Omit<StoreEvent, "rv">, stored: Obj | undefined): StoreEvent {
    // Stored objects are shared with LIST snapshots, history and listeners:
    // frozen, so an accidental in-place edit throws instead of rewriting history.
    deepFreeze(e.object);
    const ev = { ...e, rv: this.rv } as StoreEvent;
    const b = this.bucket(e.resource);
    const k = this.key(e.namespace, e.object.metadata.name);
    if (stored) b.set(k, stored);
    else b.delete(k);
    this.history.push(ev);
    if (this.history.length > this.historyLimit) this.compact(this.history[this.history.length - this.historyLimit]!.rv - 1);
    // A failing listener (a watcher whose socket died mid-write) must not
    // undo or fail a committed write, nor starve the other listeners.
    for (const fn of this.listeners) {
      try {
        fn(ev);
      } catch {
        // the listener's own connection handling cleans it up
      }
    }
    return ev;
  }

  private requireNamespace(r: ResourceType, ns: string, creating: boolean): void {
    if (!r.namespaced) return;
    const n = this.bucket(NAMESPACES).get(this.key("", ns));
    if (!n) throw errors.notFound(this.subject(NAMESPACES, ns));
    if (creating && n.metadata.deletionTimestamp) {
      throw new ApiError(403, "Forbidden", `${r.plural}${r.group ? "." + r.group : ""} "${"(new)"}" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`);
    }
  }

  private checkKind(r: ResourceType, obj: Obj, opts: WriteOptions = {}): void {
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw errors.badRequest(`the body of the request was not a ${r.kind} object`);
    if (obj.kind !== undefined && obj.kind !== r.kind) {
      throw errors.badRequest(`${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: the kind "${obj.kind}" does not match the expected kind "${r.kind}"`);
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersionOf(r)) {
      throw errors.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(r)})`);
    }
    if (obj.metadata !== undefined && (typeof obj.metadata !== "object" || obj.metadata === null)) throw errors.badRequest("metadata must be an object");
    decodeTimes(r, obj);
    const schema = this.pruneSchemaOf(r);
    const unknown = schema ? prune(obj, schema) : [];
    if (unknown.length && opts.fieldValidation === "Strict") {
      throw errors.badRequest(`strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(", ")}`);
    }
    if (opts.fieldValidation !== "Ignore") opts.warnings?.push(...unknown.map((u) => `unknown field "${u}"`));
  }

  private readonly pruneSchemas = new Map<ResourceType, Schema | undefined>();
  private pruneSchemaOf(r: ResourceType): Schema | undefined {
    if (!this.pruneSchemas.has(r)) {
      const s = r.schema ? kindPruneSchema(pruneSchema(r.schema)) : SCHEMAS[r.group ? `${r.group}/${r.kind}` : r.kind];
      this.pruneSchemas.set(r, s);
    }
    return this.pruneSchemas.get(r);
  }

  private othersOf(r: ResourceType, ns: string, name: string): Obj[] {
    const k = this.key(ns, name);
    return [...this.bucket(r).entries()].filter(([key]) => key !== k).map(([, o]) => o);
  }

  private admit(r: ResourceType, op: "create" | "update", obj: Obj, old: Obj | undefined, status: boolean): void {
    const ctx = { op, obj, old, others: this.othersOf(r, obj.metadata.namespace ?? "", obj.metadata.name), nodePortRange: this.nodePortRange };
    const causes = status ? (r.admitStatus?.(ctx) ?? []) : (r.admit?.(ctx) ?? []);
    if (causes.length) throw errors.invalid(this.subject(r, obj.metadata.name), causes);
  }

  create(r: ResourceType, ns: string, body: Obj, opts: WriteOptions = {}): Obj {
    const obj: Obj = structuredClone(body);
    this.checkKind(r, obj, opts);
    if (r.storage) {
      obj.metadata ??= {};
      if (r.namespaced && !obj.metadata.namespace) obj.metadata.namespace = ns;
      if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = `${obj.metadata.generateName}${randomBytes(4).toString("hex").slice(0, 5)}`;
      this.admit(r, "create", obj, undefined, false);
      return this.view(r, this.create(r.storage.resource, ns, r.storage.toStorage(obj), opts));
    }
    obj.metadata ??= {};
    const meta = obj.metadata;
    if (r.namespaced) {
      if (meta.namespace && meta.namespace !== ns) {
        throw errors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
      }
      meta.namespace = ns;
    } else delete meta.namespace;
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomBytes(4).toString("hex").slice(0, 5)}`;
    if (!meta.name) throw errors.invalid(this.subject(r, ""), [cause("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")]);
    if (meta.resourceVersion) throw errors.internal("resourceVersion should not be set on objects to be created");
    this.requireNamespace(r, ns, true);
    const k = this.key(r.namespaced ? ns : "", meta.name);
    if (this.bucket(r).has(k)) throw errors.alreadyExists(this.subject(r, meta.name));
    obj.apiVersion = apiVersionOf(r);
    obj.kind = r.kind;
    for (const f of ["uid", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"]) delete meta[f];
    if (r.hasStatus && r.resetStatusOnCreate) delete obj.status;
    this.admit(r, "create", obj, undefined, false);
    meta.uid = randomUUID();
    meta.creationTimestamp = now();
    meta.generation = 1;
    if (opts.dryRun) return obj;
    this.rv++;
    meta.resourceVersion = String(this.rv);
    this.commit({ type: "ADDED", resource: r, namespace: meta.namespace ?? "", object: obj }, obj);
    return structuredClone(obj);
  }

  /** PUT: a full replacement, a 409 Conflict when resourceVersion is stale. */
  update(r: ResourceType, ns: string, name: string, input: Obj, opts: WriteOptions = {}): Obj {
    const body = structuredClone(input);
    this.checkKind(r, body, opts);
    if (r.storage) {
      body.metadata ??= {};
      body.metadata.name ??= name;
      if (r.namespaced) body.metadata.namespace ??= ns;
      this.admit(r, "update", body, undefined, false);
      return this.view(r, this.update(r.storage.resource, ns, name, r.storage.toStorage(body), opts));
    }
    const cur = this.bucket(r).get(this.key(r.namespaced ? ns : "", name));
    if (!cur) {
      if (r.allowCreateOnUpdate && !opts.subresource) {
        if (body.metadata?.name && body.metadata.name !== name) throw errors.badRequest(`the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`);
        const { resourceVersion: _rv, ...meta } = body.metadata ?? {};
        return this.create(r, ns, { ...body, metadata: { ...meta, name } }, opts);
      }
      throw errors.notFound(this.subject(r, name));
    }
    return this.write(r, cur, body, opts);
  }

  /** PATCH: applied to the current object, then written like an update. */
  patch(r: ResourceType, ns: string, name: string, contentType: string, body: unknown, opts: WriteOptions = {}): Obj {
    const stored = this.bucket(r).get(this.key(r.namespaced ? ns : "", name));
    if (!stored) throw errors.notFound(this.subject(r, name));
    const cur = this.view(r, stored);
    const patched = applyPatch(contentType, structuredClone(cur), body, r.patchSchema);
    if (r.storage) return this.update(r, ns, name, patched, opts);
    this.checkKind(r, patched, opts);
    return this.write(r, cur, patched, opts);
  }

  /** Read-modify-write helper for in-process controllers and tests (no conflict possible: synchronous). */
  mutate(r: ResourceType, ns: string, name: string, fn: (o: Obj) => void, opts: WriteOptions = {}): Obj {
    const cur = this.get(r, ns, name);
    fn(cur);
    return this.update(r, ns, name, cur, opts);
  }

  private write(r: ResourceType, cur: Obj, next: Obj, opts: WriteOptions): Obj {
    const name = cur.metadata.name;
    next.metadata ??= {};
    const meta = next.metadata;
    if (meta.name !== undefined && meta.name !== name) {
      throw errors.badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
    }
    if (r.namespaced && meta.namespace && meta.namespace !== cur.metadata.namespace) {
      throw errors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    if (meta.uid && meta.uid !== cur.metadata.uid) {
      throw errors.conflict(this.subject(r, name), `Precondition failed: UID in precondition: ${meta.uid}, UID in object meta: ${cur.metadata.uid}`);
    }
    if (meta.resourceVersion && meta.resourceVersion !== cur.metadata.resourceVersion) {
      throw errors.conflict(this.subject(r, name));
    }
    for (const f of SYSTEM_META) {
      if (cur.metadata[f] === undefined) delete meta[f];
      else meta[f] = cur.metadata[f];
    }
    delete meta.managedFields;
    delete meta.selfLink;
    next.apiVersion = apiVersionOf(r);
    next.kind = r.kind;

    if (opts.subresource === "status") {
      // The status endpoint writes status (and metadata) only; spec stays.
      for (const k of Object.keys(next)) if (!["metadata", "status", "kind", "apiVersion"].includes(k)) delete next[k];
      for (const [k, v] of Object.entries(cur)) if (!["metadata", "status", "kind", "apiVersion"].includes(k)) next[k] = structuredClone(v);
      this.admit(r, "update", next, cur, true);
    } else {
      // The main endpoint ignores status changes.
      if (r.hasStatus) {
        if (cur.status === undefined) delete next.status;
        else next.status = structuredClone(cur.status);
      }
      this.admit(r, "update", next, cur, false);
    }

    const oldFinalizers: string[] = cur.metadata.finalizers ?? [];
    const newFinalizers: string[] = meta.finalizers ?? [];
    if (meta.finalizers && meta.finalizers.length === 0) delete meta.finalizers;
    if (cur.metadata.deletionTimestamp) {
      const added = newFinalizers.filter((f) => !oldFinalizers.includes(f));
      if (added.length) {
        throw errors.invalid(this.subject(r, name), [cause("metadata.finalizers", "FieldValueForbidden", `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`)]);
      }
    }

    if (!isDeepStrictEqual(specOf(next), specOf(cur))) meta.generation = (cur.metadata.generation ?? 1) + 1;
    meta.resourceVersion = cur.metadata.resourceVersion;
    if (isDeepStrictEqual(next, cur)) return structuredClone(cur); // no-op: no bump, no event
    if (opts.dryRun) return next;

    this.rv++;
    meta.resourceVersion = String(this.rv);
    const ns = cur.metadata.namespace ?? "";
    if (cur.metadata.deletionTimestamp && newFinalizers.length === 0) {
      this.commit({ type: "DELETED", resource: r, namespace: ns, object: next, previous: cur }, undefined);
      this.afterRemove(r, next);
    } else {
      this.commit({ type: "MODIFIED", resource: r, namespace: ns, object: next, previous: cur }, next);
    }
    return structuredClone(next);
  }

  delete(r: ResourceType, ns: string, name: string, opts: DeleteOptions = {}): Obj {
    if (r.storage) return this.view(r, this.delete(r.storage.resource, ns, name, opts));
    const cur = this.bucket(r).get(this.key(r.namespaced ? ns : "", name));
    if (!cur) throw errors.notFound(this.subject(r, name));
    const pre = opts.preconditions ?? {};
    if (pre.uid && pre.uid !== cur.metadata.uid) {
      throw errors.conflict(this.subject(r, name), `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`);
    }
    if (pre.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) {
      throw errors.conflict(this.subject(r, name), `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`);
    }
    const grace = opts.gracePeriodSeconds ?? cur.spec?.terminationGracePeriodSeconds ?? 30;
    if (r.graceful && this.podTermination && cur.spec?.nodeName && grace > 0 && !opts.dryRun) {
      // Terminating: stays until the kubelet deletes it; a shorter grace period shortens it.
      const was = cur.metadata.deletionGracePeriodSeconds;
      if (cur.metadata.deletionTimestamp && was !== undefined && was <= grace) return structuredClone(cur);
      const next = structuredClone(cur);
      next.metadata.deletionTimestamp = new Date(Math.floor(Date.now() / 1000) * 1000 + grace * 1000).toISOString().replace(".000Z", "Z");
      next.metadata.deletionGracePeriodSeconds = grace;
      this.rv++;
      next.metadata.resourceVersion = String(this.rv);
      this.commit({ type: "MODIFIED", resource: r, namespace: ns, object: next, previous: cur }, next);
      return structuredClone(next);
    }
    const namespaceNs = r === NAMESPACES;
    const pending = (cur.metadata.finalizers ?? []).length > 0 || (namespaceNs && this.namespaceHasContent(name));
    if (opts.dryRun) return structuredClone(cur);
    if (pending) {
      if (cur.metadata.deletionTimestamp) return structuredClone(cur);
      const next = structuredClone(cur);
      next.metadata.deletionTimestamp = now();
      next.metadata.deletionGracePeriodSeconds = 0;
      if (namespaceNs) next.status = { ...next.status, phase: "Terminating" };
      this.rv++;
      next.metadata.resourceVersion = String(this.rv);
      this.commit({ type: "MODIFIED", resource: r, namespace: ns, object: next, previous: cur }, next);
      if (namespaceNs) setTimeout(() => this.drainNamespace(name), this.namespaceDrainMs).unref();
      return structuredClone(this.tryGet(r, ns, name) ?? next);
    }
    this.rv++;
    const gone = structuredClone(cur);
    gone.metadata.resourceVersion = String(this.rv);
    this.commit({ type: "DELETED", resource: r, namespace: cur.metadata.namespace ?? "", object: gone, previous: cur }, undefined);
    this.afterRemove(r, gone);
    return structuredClone(gone);
  }

  private namespaceHasContent(ns: string): boolean {
    return RESOURCES.some((r) => r.namespaced && !r.storage && [...this.bucket(r).values()].some((o) => o.metadata.namespace === ns));
  }

  private drainNamespace(ns: string): void {
    for (const r of RESOURCES) {
      if (!r.namespaced || r.storage) continue;
      for (const o of [...this.bucket(r).values()]) {
        if (o.metadata.namespace === ns && !o.metadata.deletionTimestamp) {
          const current = this.bucket(r).get(this.key(ns, o.metadata.name));
          if (current === o) this.delete(r, ns, o.metadata.name);
        }
      }
    }
    this.finishNamespace(ns);
  }

  /** A terminating namespace goes once its last object is gone. */
  private afterRemove(r: ResourceType, obj: Obj): void {
    if (r.namespaced) this.finishNamespace(obj.metadata.namespace);
  }

  private finishNamespace(ns: string): void {
    const n = this.bucket(NAMESPACES).get(this.key("", ns));
    if (!n || !n.metadata.deletionTimestamp || this.namespaceHasContent(ns)) return;
    this.rv++;
    const gone = structuredClone(n);
    gone.metadata.resourceVersion = String(this.rv);
    this.commit({ type: "DELETED", resource: NAMESPACES, namespace: "", object: gone, previous: n }, undefined);
  }
}
