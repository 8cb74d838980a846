// The control endpoints under /__edgelb: health, the snapshot push API the
// sync agent uses, and this isolate's status. Each token may do only what its
// role allows (./auth): reading, or writing one cluster, or everything.
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import * as v from "valibot";
import type { ConfigStore } from "../config/index.ts";
import { epochOf, heartbeatOf, nextInstallEpoch, parseTombstone, tombstoneText, type StoredMetadata } from "../config/stored.ts";
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
  /** When this isolate last recorded each cluster's heartbeat (its rate limit). */
  const lastBeat = new Map<string, number>();

  /**
   * Records the agent's heartbeat for the stored snapshot, dated by this worker's clock: in this
   * isolate, the location copy, the fast path, and (at most every kvBeatEvery) the KV metadata.
   * Returns false when rate-limited here.
   */
  const recordHeartbeat = async (name: string, snapshot: Snapshot, stored: string, metadata: unknown, installEpoch: number | undefined): Promise<{ recorded: boolean; kvWritten: boolean; changed?: string | null }> => {
    const at = now();
    const last = lastBeat.get(name);
    if (last !== undefined && at - last < HEARTBEAT_MIN_INTERVAL_MS && at >= last) {
      deps.config.install(snapshot, stored, installEpoch, heartbeatOf(metadata, at));
      return { recorded: false, kvWritten: false };
    }
    lastBeat.set(name, at);
    if (lastBeat.size > 10_000) lastBeat.delete(lastBeat.keys().next().value!);
    const inKv = heartbeatOf(metadata, at);
    let kvWritten = false;
    if (inKv === undefined || at - inKv >= kvBeatEvery) {
      // The same value again with a newer heartbeatAt: one KV write, rate-limited per cluster.
      // KV has no compare-and-swap: read again right before writing, so a push or DELETE that landed
      // since this heartbeat's read (through another isolate) is not overwritten by the older value.
      // A write through another location that this location's KV has not seen yet (up to ~60 s) can
      // still be overwritten: the agent's next push or heartbeat (409) repairs it.
      const again = await deps.kv.getWithMetadata(snapshotKey(name), "text");
      if (again.value !== stored) {
        lastBeat.delete(name);
        return { recorded: false, kvWritten: false, changed: again.value };
      }
      const meta: StoredMetadata = { ...(installEpoch !== undefined ? { installEpoch } : {}), heartbeatAt: at };
      await deps.kv.put(snapshotKey(name), stored, { metadata: meta });
      kvWritten = true;
    }
    deps.config.install(snapshot, stored, installEpoch, at);
    await deps.config.publishHeartbeat(name);
    return { recorded: true, kvWritten };
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
            await recordHeartbeat(name, previous.snapshot, stored, metadata, installEpoch);
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
      lastBeat.set(name, at);
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
      const { value: stored, metadata } = await deps.kv.getWithMetadata(snapshotKey(name), "text");
      if (stored === null || parseTombstone(stored)) return refuse(404, `no snapshot stored for cluster "${name}": push one`);
      const current = parseSnapshot(stored);
      if (!current.ok) return refuse(409, `the stored snapshot of cluster "${name}" is not valid: push a new generation`, { storedGeneration: storedGenerationOf(stored) });
      if (current.snapshot.generation !== generation) {
        return refuse(409, `generation ${generation} is not the stored ${current.snapshot.generation}: push your snapshot`, { storedGeneration: current.snapshot.generation });
      }
      const beat = await recordHeartbeat(name, current.snapshot, stored, metadata, epochOf(metadata));
      if (beat.changed !== undefined) {
        // A push or DELETE landed while this heartbeat was being recorded: it is not taken.
        if (beat.changed === null || parseTombstone(beat.changed)) return refuse(404, `no snapshot stored for cluster "${name}": push one`);
        const now2 = parseSnapshot(beat.changed);
        const storedGeneration = now2.ok ? now2.snapshot.generation : storedGenerationOf(beat.changed);
        return refuse(409, `generation ${generation} is not the stored ${storedGeneration ?? "value"}: push your snapshot`, { storedGeneration });
      }
      if (beat.kvWritten) log("info", "heartbeat.stored", { cluster: name, generation, reason: "KV's heartbeat was older than the KV refresh interval", kvEverySeconds: kvBeatEvery / 1000 });
      return c.json({ accepted: true, generation, recorded: beat.recorded, ...routing(deps, name, c.get("caller").role === "cluster") });
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
