// The control endpoints under /__edgelb: health, the snapshot push API the
// sync agent uses, and this isolate's status. Each token may do only what its
// role allows (./auth): reading, or writing one cluster, or everything.
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import * as v from "valibot";
import type { ConfigStore } from "../config/index.ts";
import { epochOf, heartbeatOf, isOlder, nextInstallEpoch, parseTombstone, tombstoneText, type StoredMetadata } from "../config/stored.ts";
import type { GenerationsApi, ValueVersion } from "../generations/api.ts";
import type { Logger } from "../log/index.ts";
import { ClusterName, parseSnapshot, snapshotKey, type Snapshot } from "../snapshot/schema.ts";
import { allowed, bearer, forbiddenMessage, type Action, type AuthVariables, type TokenTable } from "./auth/index.ts";

export interface ControlDeps {
  kv: KVNamespace;
  config: ConfigStore;
  tokens: TokenTable;
  maxPushBytes: number;
  log: Logger;
  /** The isolate's status; the request gives the sample client place for steering orders. */
  status: (request?: Request) => unknown;
  now?: () => number;
  /**
   * At most one KV write per cluster per this many ms for heartbeats alone (the KV metadata's
   * heartbeatAt); default HEARTBEAT_KV_EVERY_MS. Readers of a fresher location copy or the fast path
   * see every heartbeat; this bounds only what a cold isolate reading KV sees.
   */
  heartbeatKvEveryMs?: number;
  /**
   * The generations Durable Object, when the fast path uses it: it decides each heartbeat's KV
   * refresh (strongly consistent: it sees every push and deletion), so a refresh never writes back
   * a value a push or DELETE replaced, and one isolate in the world writes per interval.
   */
  generations?: () => GenerationsApi;
  /** After a push changed what this isolate serves (e.g. to log a refused hostname claim at once). */
  onInstalled?: () => Promise<void>;
}

/** Default for ControlDeps.heartbeatKvEveryMs: 24 KV writes per cluster per day. */
export const HEARTBEAT_KV_EVERY_MS = 3_600_000;
/** Heartbeats of one cluster closer together than this in one isolate are not recorded (a flapping or hostile agent). */
export const HEARTBEAT_MIN_INTERVAL_MS = 2_000;
/** A heartbeat body is `{"generation": N}`: anything bigger is not one. */
const MAX_HEARTBEAT_BYTES = 1024;

const HeartbeatBody = v.strictObject({ generation: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Number.MAX_SAFE_INTEGER)) });

/** The generation of a stored value, even when the value is otherwise invalid. */
function storedGenerationOf(text: string): number {
  try {
    const g = (JSON.parse(text) as { generation?: unknown }).generation;
    return typeof g === "number" && Number.isSafeInteger(g) ? g : 0;
  } catch {
    return 0;
  }
}

type Env = { Variables: AuthVariables };

export function controlApp(deps: ControlDeps): Hono<Env> {
  const app = new Hono<Env>();
  const { log } = deps;
  const now = deps.now ?? Date.now;
  const kvBeatEvery = deps.heartbeatKvEveryMs ?? HEARTBEAT_KV_EVERY_MS;
  /**
   * When this isolate last took each cluster's heartbeat (its rate limit, checked before any KV
   * read), and the generation it then confirmed (undefined while that heartbeat is in flight).
   */
  const lastBeat = new Map<string, { at: number; generation: number | undefined }>();
  /** Bumped by every push and delete this isolate handles: a heartbeat in flight across one does not write KV. */
  const changes = new Map<string, number>();
  const changed = (name: string) => {
    changes.set(name, (changes.get(name) ?? 0) + 1);
    if (changes.size > 10_000) changes.delete(changes.keys().next().value!);
  };
  const noteBeat = (name: string, at: number, generation: number | undefined) => {
    lastBeat.set(name, { at, generation });
    if (lastBeat.size > 10_000) lastBeat.delete(lastBeat.keys().next().value!);
  };
  /** Undefined when a heartbeat of this cluster may be taken now; else the last one (within HEARTBEAT_MIN_INTERVAL_MS). */
  const rateLimited = (name: string, at: number) => {
    const last = lastBeat.get(name);
    return last !== undefined && at - last.at < HEARTBEAT_MIN_INTERVAL_MS && at >= last.at ? last : undefined;
  };

  const sameKv = (a: { value: string | null; metadata: unknown }, stored: string, metadata: unknown) =>
    a.value === stored && epochOf(a.metadata) === epochOf(metadata);

  /**
   * The KV refresh of a heartbeat: the same value again with a newer heartbeatAt, written only while
   * it is still current. With the generations object: it must allow it (it knows every push and
   * deletion; one isolate per interval), and when it has moved on by the time the write is done
   * (a push or DELETE between its answer and our put), KV gets the object's newer value back.
   * Always: KV is read again just before the put and nothing is written when it changed. Residual
   * window without the object: a push/DELETE in another location whose KV write lands between that
   * re-read and the put, or that this location's KV read cache (up to 60 s) does not show yet.
   */
  const refreshKv = async (name: string, stored: string, metadata: unknown, installEpoch: number | undefined, generation: number, at: number, changesBefore: number): Promise<boolean> => {
    const key = snapshotKey(name);
    const version = { generation, epoch: installEpoch ?? null };
    let claimed: { write: boolean; current: ValueVersion | null } | undefined;
    if (deps.generations) {
      try {
        claimed = await deps.generations().claimKvRefresh(name, version, at, kvBeatEvery);
      } catch (err) {
        log("warn", "heartbeat.kv_claim_failed", { cluster: name, error: String(err) });
      }
      if (claimed && !claimed.write) return false;
    }
    if ((changes.get(name) ?? 0) !== changesBefore) return false;
    if (!sameKv(await deps.kv.getWithMetadata(key, "text"), stored, metadata)) return false;
    if ((changes.get(name) ?? 0) !== changesBefore) return false;
    const meta: StoredMetadata = { ...(installEpoch !== undefined ? { installEpoch } : {}), heartbeatAt: at };
    await deps.kv.put(key, stored, { metadata: meta });
    if (claimed && deps.generations) await repairKv(name, version);
    return true;
  };

  /** After a heartbeat's KV write: when the object holds a newer value now, KV gets it back. */
  const repairKv = async (name: string, wrote: { generation: number; epoch: number | null }) => {
    try {
      const now = await deps.generations!().value(name);
      if (!now) return;
      const v = now.version;
      if (!isOlder({ epoch: wrote.epoch ?? undefined, generation: wrote.generation }, { epoch: v.epoch ?? undefined, generation: v.generation })) return;
      if (v.kind === "tombstone") await deps.kv.put(snapshotKey(name), now.text);
      else {
        const meta: StoredMetadata = { ...(v.epoch !== null ? { installEpoch: v.epoch } : {}), ...(v.heartbeatAt !== undefined ? { heartbeatAt: v.heartbeatAt } : v.at !== undefined ? { heartbeatAt: v.at } : {}) };
        await deps.kv.put(snapshotKey(name), now.text, { metadata: meta });
      }
      log("warn", "heartbeat.kv_repaired", { cluster: name, wrote: wrote.generation, restored: v.kind === "tombstone" ? "deletion" : v.generation });
    } catch (err) {
      log("error", "heartbeat.kv_repair_failed", { cluster: name, error: String(err) });
    }
  };

  /**
   * Records the agent's heartbeat for the stored snapshot, dated by this worker's clock: in this
   * isolate, the location copy, the fast path, and (at most every kvBeatEvery) the KV metadata.
   */
  const recordHeartbeat = async (name: string, snapshot: Snapshot, stored: string, metadata: unknown, installEpoch: number | undefined, at: number, changesBefore: number): Promise<{ kvWritten: boolean }> => {
    if ((changes.get(name) ?? 0) === changesBefore) noteBeat(name, at, snapshot.generation);
    const inKv = heartbeatOf(metadata, at);
    let kvWritten = false;
    if (inKv === undefined || at - inKv >= kvBeatEvery) {
      kvWritten = await refreshKv(name, stored, metadata, installEpoch, snapshot.generation, at, changesBefore);
    }
    if ((changes.get(name) ?? 0) !== changesBefore) return { kvWritten };
    deps.config.install(snapshot, stored, installEpoch, at);
    await deps.config.publishHeartbeat(name);
    return { kvWritten };
  };

  app.get("/healthz", (c) => c.text("ok\n"));

  app.use(
    "/v1/*",
    bearer({
      tokens: deps.tokens,
      onRefused: (reason, req, status) => log("warn", "control.refused", { method: req.method, path: new URL(req.url).pathname, status, reason }),
    }),
  );

  /** 403 unless the caller's token allows this; undefined when it does. */
  const refuseUnlessAllowed = (c: Context<Env>, action: Action, cluster?: string): Response | undefined => {
    const caller = c.get("caller");
    if (allowed(caller, action, cluster)) return undefined;
    const error = forbiddenMessage(caller, action, cluster);
    log("warn", "control.refused", {
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      status: 403,
      reason: "token not allowed",
      role: caller.role,
      ...(caller.role === "cluster" ? { tokenCluster: caller.cluster } : {}),
    });
    return c.json({ error }, 403);
  };

  app.get("/v1/status", (c) => refuseUnlessAllowed(c, "read-status") ?? c.json(deps.status(c.req.raw)));

  const validName = (name: string) => v.safeParse(ClusterName, name).success;
  const badName = (name: string) =>
    `cluster name "${name}" is invalid: must be a DNS label (lowercase letters, digits and '-', at most 63)`;

  app.put(
    "/v1/clusters/:name",
    // Checked before the body is read: a token of another cluster gets 403 without uploading 10 MiB.
    async (c, next) => refuseUnlessAllowed(c, "write-cluster", c.req.param("name")) ?? (await next()),
    bodyLimit({
      maxSize: deps.maxPushBytes,
      onError: (c) => {
        const error = `snapshot too large: the limit is ${deps.maxPushBytes} bytes`;
        log("warn", "push.refused", { cluster: c.req.param("name"), status: 413, error });
        return c.json({ error }, 413);
      },
    }),
    async (c) => {
      const name = c.req.param("name");
      const refuse = (status: 400 | 409, error: string, extra: Record<string, unknown> = {}) => {
        log("warn", "push.refused", { cluster: name, status, error, ...extra });
        return c.json({ error, ...extra }, status);
      };
      if (!validName(name)) return refuse(400, badName(name));
      const text = await c.req.text();
      const parsed = parseSnapshot(text);
      if (!parsed.ok) return refuse(400, parsed.error);
      const snapshot = parsed.snapshot;
      if (snapshot.cluster !== name) {
        return refuse(400, `snapshot is for cluster "${snapshot.cluster}" but was pushed to "${name}"`);
      }

      const key = snapshotKey(name);
      const { value: stored, metadata } = await deps.kv.getWithMetadata(key, "text");
      const tombstone = stored === null ? undefined : parseTombstone(stored);
      // A push onto nothing or onto a deletion is a new install: a new, larger
      // install epoch, so every isolate takes it over the deleted one whatever its generation.
      let installEpoch = stored === null || tombstone ? nextInstallEpoch(tombstone?.installEpoch, now()) : epochOf(metadata);
      if (stored !== null && !tombstone) {
        const storedGeneration = storedGenerationOf(stored);
        if (snapshot.generation < storedGeneration) {
          return refuse(409, `generation ${snapshot.generation} is older than the stored ${storedGeneration}`, { storedGeneration });
        }
        if (snapshot.generation === storedGeneration) {
          const previous = parseSnapshot(stored);
          if (previous.ok && JSON.stringify(previous.snapshot) === JSON.stringify(snapshot)) {
            // Same content: no KV write (KV allows 1 write/s per key and bills writes), but a heartbeat.
            await recordHeartbeat(name, previous.snapshot, stored, metadata, installEpoch, now(), changes.get(name) ?? 0);
            await deps.config.publish(name);
            return c.json({ accepted: true, generation: snapshot.generation, unchanged: true, ...routing(deps, name, c.get("caller").role === "cluster") });
          }
          return refuse(409, `generation ${snapshot.generation} is already stored with different content; push a higher generation`, {
            storedGeneration,
          });
        }
      }

      // A value stored before install epochs existed gets one now.
      installEpoch ??= nextInstallEpoch(undefined, now());
      const at = now();
      // A push is a heartbeat too: dated by this worker's clock, never the agent's publishedAt.
      const meta: StoredMetadata = { installEpoch, heartbeatAt: at };
      await deps.kv.put(key, text, { metadata: meta });
      changed(name);
      noteBeat(name, at, snapshot.generation);
      deps.config.install(snapshot, text, installEpoch, at);
      // The location's other isolates take it from the location copy, not after the next KV read.
      await deps.config.publish(name);
      await deps.onInstalled?.();
      const r = routing(deps, name, c.get("caller").role === "cluster");
      log("info", "push.accepted", {
        cluster: name,
        generation: snapshot.generation,
        ...(tombstone ? { reinstalledAfter: tombstone.generation - 1 } : {}),
        nodes: snapshot.nodes.length,
        services: snapshot.services.length,
        ...r,
      });
      return c.json({ accepted: true, generation: snapshot.generation, unchanged: false, ...r });
    },
  );

  // The agent's heartbeat: "generation N is still what I publish". Cheap: no snapshot upload, and no
  // KV write unless the stored heartbeat is older than kvBeatEvery (docs/worker.md, Freshness and cost).
  app.post(
    "/v1/clusters/:name/heartbeat",
    async (c, next) => refuseUnlessAllowed(c, "write-cluster", c.req.param("name")) ?? (await next()),
    bodyLimit({
      maxSize: MAX_HEARTBEAT_BYTES,
      onError: (c) => c.json({ error: `heartbeat too large: the body is {"generation": N}, at most ${MAX_HEARTBEAT_BYTES} bytes` }, 413),
    }),
    async (c) => {
      const name = c.req.param("name");
      const refuse = (status: 400 | 404 | 409, error: string, extra: Record<string, unknown> = {}) => {
        log("warn", "heartbeat.refused", { cluster: name, status, error, ...extra });
        return c.json({ error, ...extra }, status);
      };
      if (!validName(name)) return refuse(400, badName(name));
      let body: unknown;
      try {
        body = JSON.parse(await c.req.text());
      } catch {
        return refuse(400, 'heartbeat body is not JSON: send {"generation": N}');
      }
      const parsed = v.safeParse(HeartbeatBody, body);
      if (!parsed.success) return refuse(400, 'heartbeat body must be {"generation": N} with N a positive integer');
      const { generation } = parsed.output;
      // Rate-limited before any KV read: a flood of heartbeats costs no KV reads or writes.
      const at = now();
      const last = rateLimited(name, at);
      if (last) {
        if (last.generation === generation) return c.json({ accepted: true, generation, recorded: false, ...routing(deps, name, c.get("caller").role === "cluster") });
        log("warn", "heartbeat.refused", { cluster: name, status: 429, error: "rate-limited" });
        c.header("retry-after", String(Math.ceil(HEARTBEAT_MIN_INTERVAL_MS / 1000)));
        return c.json({ error: `heartbeats of cluster "${name}" closer than ${HEARTBEAT_MIN_INTERVAL_MS / 1000} s apart are not taken` }, 429);
      }
      noteBeat(name, at, undefined);
      const changesBefore = changes.get(name) ?? 0;
      const { value: stored, metadata } = await deps.kv.getWithMetadata(snapshotKey(name), "text");
      if (stored === null || parseTombstone(stored)) return refuse(404, `no snapshot stored for cluster "${name}": push one`);
      const current = parseSnapshot(stored);
      if (!current.ok) return refuse(409, `the stored snapshot of cluster "${name}" is not valid: push a new generation`, { storedGeneration: storedGenerationOf(stored) });
      if (current.snapshot.generation !== generation) {
        return refuse(409, `generation ${generation} is not the stored ${current.snapshot.generation}: push your snapshot`, { storedGeneration: current.snapshot.generation });
      }
      const beat = await recordHeartbeat(name, current.snapshot, stored, metadata, epochOf(metadata), at, changesBefore);
      if (beat.kvWritten) log("info", "heartbeat.stored", { cluster: name, generation, reason: "KV's heartbeat was older than the KV refresh interval", kvEverySeconds: kvBeatEvery / 1000 });
      return c.json({ accepted: true, generation, recorded: true, ...routing(deps, name, c.get("caller").role === "cluster") });
    },
  );

  app.get("/v1/clusters/:name", async (c) => {
    const name = c.req.param("name");
    const refused = refuseUnlessAllowed(c, "read-cluster", name);
    if (refused) return refused;
    if (!validName(name)) return c.json({ error: badName(name) }, 400);
    const stored = await deps.kv.get(snapshotKey(name), "text");
    // A deletion reads as nothing stored: the agent of a new install starts at generation 1.
    if (stored === null || parseTombstone(stored)) return c.json({ error: `no snapshot stored for cluster "${name}"` }, 404);
    return c.body(stored, 200, { "content-type": "application/json" });
  });

  app.delete("/v1/clusters/:name", async (c) => {
    const name = c.req.param("name");
    const refused = refuseUnlessAllowed(c, "write-cluster", name);
    if (refused) return refused;
    if (!validName(name)) return c.json({ error: badName(name) }, 400);
    const key = snapshotKey(name);
    const { value: stored, metadata } = await deps.kv.getWithMetadata(key, "text");
    if (stored === null || parseTombstone(stored)) return c.json({ error: `no snapshot stored for cluster "${name}"` }, 404);
    // A tombstone, not a delete: isolates that still serve the cluster learn
    // of the deletion from it, and a later install is ordered after it.
    const generation = storedGenerationOf(stored);
    const installEpoch = epochOf(metadata) ?? 0;
    const tombstone = tombstoneText(name, generation, installEpoch, now());
    await deps.kv.put(key, tombstone);
    changed(name);
    lastBeat.delete(name);
    deps.config.remove(name, { epoch: installEpoch, generation: generation + 1 }, tombstone);
    await deps.config.publish(name);
    log("info", "push.deleted", { cluster: name, generation });
    return c.json({ deleted: true, cluster: name });
  });

  app.all("*", (c) => c.json({ error: `no control endpoint ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));
  return app;
}

/**
 * Pushes for clusters outside EDGELB_CLUSTERS are stored but not routed; say so.
 * A cluster-scoped token is not told the other clusters' names.
 */
function routing(deps: ControlDeps, name: string, clusterScoped: boolean): { routed: boolean; warning?: string } {
  if (deps.config.clusters.includes(name)) return { routed: true };
  const list = clusterScoped ? "" : ` (${deps.config.clusters.join(",")})`;
  return {
    routed: false,
    warning: `cluster "${name}" is not in this worker's EDGELB_CLUSTERS${list}: stored in KV but not routed`,
  };
}
