// The control endpoints under /__edgelb: health, the snapshot push API the
// sync agent uses, and this isolate's status. Each token may do only what its
// role allows (./auth): reading, or writing one cluster, or everything.
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import * as v from "valibot";
import type { ConfigStore } from "../config/index.ts";
import { epochOf, nextInstallEpoch, parseTombstone, tombstoneText, type StoredMetadata } from "../config/stored.ts";
import type { Logger } from "../log/index.ts";
import { ClusterName, parseSnapshot, snapshotKey } from "../snapshot/schema.ts";
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
}

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
            // Same content: no KV write (KV allows 1 write/s per key and bills writes).
            deps.config.install(previous.snapshot, stored, installEpoch);
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
      const meta: StoredMetadata = { installEpoch };
      await deps.kv.put(key, text, { metadata: meta });
      deps.config.install(snapshot, text, installEpoch);
      // The location's other isolates take it from the location copy, not after the next KV read.
      await deps.config.publish(name);
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
