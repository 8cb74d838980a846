// The control endpoints under /__edgelb: health, the snapshot push API the
// sync agent uses, and this isolate's status.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import * as v from "valibot";
import type { ConfigStore } from "../config/index.ts";
import type { Logger } from "../log/index.ts";
import { ClusterName, parseSnapshot, snapshotKey } from "../snapshot/schema.ts";
import { bearer } from "./auth/index.ts";

export interface ControlDeps {
  kv: KVNamespace;
  config: ConfigStore;
  token: string | undefined;
  maxPushBytes: number;
  log: Logger;
  status: () => unknown;
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

export function controlApp(deps: ControlDeps): Hono {
  const app = new Hono();
  const { log } = deps;

  app.get("/healthz", (c) => c.text("ok\n"));

  app.use(
    "/v1/*",
    bearer({
      token: deps.token,
      onRefused: (reason, req) =>
        log("warn", "control.refused", { method: req.method, path: new URL(req.url).pathname, status: reason === "disabled" ? 403 : 401, reason }),
    }),
  );

  app.get("/v1/status", (c) => c.json(deps.status()));

  const validName = (name: string) => v.safeParse(ClusterName, name).success;
  const badName = (name: string) =>
    `cluster name "${name}" is invalid: must be a DNS label (lowercase letters, digits and '-', at most 63)`;

  app.put(
    "/v1/clusters/:name",
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
      const stored = await deps.kv.get(key, "text");
      if (stored !== null) {
        const storedGeneration = storedGenerationOf(stored);
        if (snapshot.generation < storedGeneration) {
          return refuse(409, `generation ${snapshot.generation} is older than the stored ${storedGeneration}`, { storedGeneration });
        }
        if (snapshot.generation === storedGeneration) {
          const previous = parseSnapshot(stored);
          if (previous.ok && JSON.stringify(previous.snapshot) === JSON.stringify(snapshot)) {
            // Same content: no KV write (KV allows 1 write/s per key and bills writes).
            deps.config.install(previous.snapshot, stored);
            return c.json({ accepted: true, generation: snapshot.generation, unchanged: true, ...routing(deps, name) });
          }
          return refuse(409, `generation ${snapshot.generation} is already stored with different content; push a higher generation`, {
            storedGeneration,
          });
        }
      }

      await deps.kv.put(key, text);
      deps.config.install(snapshot, text);
      const r = routing(deps, name);
      log("info", "push.accepted", {
        cluster: name,
        generation: snapshot.generation,
        nodes: snapshot.nodes.length,
        services: snapshot.services.length,
        ...r,
      });
      return c.json({ accepted: true, generation: snapshot.generation, unchanged: false, ...r });
    },
  );

  app.get("/v1/clusters/:name", async (c) => {
    const name = c.req.param("name");
    if (!validName(name)) return c.json({ error: badName(name) }, 400);
    const stored = await deps.kv.get(snapshotKey(name), "text");
    if (stored === null) return c.json({ error: `no snapshot stored for cluster "${name}"` }, 404);
    return c.body(stored, 200, { "content-type": "application/json" });
  });

  app.delete("/v1/clusters/:name", async (c) => {
    const name = c.req.param("name");
    if (!validName(name)) return c.json({ error: badName(name) }, 400);
    const key = snapshotKey(name);
    const stored = await deps.kv.get(key, "text");
    if (stored === null) return c.json({ error: `no snapshot stored for cluster "${name}"` }, 404);
    await deps.kv.delete(key);
    deps.config.remove(name);
    log("info", "push.deleted", { cluster: name, generation: storedGenerationOf(stored) });
    return c.json({ deleted: true, cluster: name });
  });

  app.all("*", (c) => c.json({ error: `no control endpoint ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));
  return app;
}

/** Pushes for clusters outside EDGELB_CLUSTERS are stored but not routed; say so. */
function routing(deps: ControlDeps, name: string): { routed: boolean; warning?: string } {
  if (deps.config.clusters.includes(name)) return { routed: true };
  return {
    routed: false,
    warning: `cluster "${name}" is not in this worker's EDGELB_CLUSTERS (${deps.config.clusters.join(",")}): stored in KV but not routed`,
  };
}
