// Workers KV as several Cloudflare locations see it, for the multi-location
// simulation: one central store, and in front of it one read cache per
// location. A location reads its own writes at once (its cache is updated by
// the write); every other location keeps serving what it read before (or that
// nothing was stored) until its cached read is `propagationMs` old, which is
// how KV's changes reach other locations ("as their cached versions time out").
//
// Each location's workerd reaches it through a tiny KV service module
// (kvModuleSource) that forwards the runtime's KV calls: GET/PUT/DELETE
// /<location>/<url-encoded key>, metadata in the CF-KV-Metadata header.
import http from "node:http";
import type { AddressInfo } from "node:net";

interface Stored {
  value: Buffer;
  metadata: string | null;
}

export interface KvHub {
  url: string;
  /** KV reads (GETs) per location, cache hits included: what the worker pays for. */
  reads: Map<string, number>;
  /** The KV service module for one location's workerd. */
  moduleFor(location: string): string;
  setPropagationMs(ms: number): void;
  /**
   * As if `location` had just read every key it has read before: it keeps seeing those values for
   * another propagation time (the worst case of KV's per-location cache, and a fair start for all).
   */
  refreshReadTimes(location: string): void;
  close(): Promise<void>;
}

export async function startKvHub(o: { host: string; propagationMs: number; now?: () => number }): Promise<KvHub> {
  const now = o.now ?? Date.now;
  let propagationMs = o.propagationMs;
  const central = new Map<string, Stored>();
  /** location -> key -> what that location read, and when. */
  const caches = new Map<string, Map<string, { stored: Stored | undefined; at: number }>>();
  const reads = new Map<string, number>();
  const cacheOf = (loc: string) => {
    let c = caches.get(loc);
    if (!c) caches.set(loc, (c = new Map()));
    return c;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://hub");
      const [, loc = "", ...rest] = url.pathname.split("/");
      const key = decodeURIComponent(rest.join("/"));
      const cache = cacheOf(loc);
      if (req.method === "GET" && key === "") {
        // list: not used by the worker's request path; served from the central store.
        const prefix = url.searchParams.get("prefix") ?? "";
        const keys = [...central.keys()].filter((k) => k.startsWith(prefix)).sort().map((name) => ({ name }));
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ keys, list_complete: true }));
        return;
      }
      if (req.method === "GET") {
        reads.set(loc, (reads.get(loc) ?? 0) + 1);
        let hit = cache.get(key);
        if (!hit || now() - hit.at >= propagationMs) {
          hit = { stored: central.get(key), at: now() };
          cache.set(key, hit);
        }
        if (!hit.stored) {
          res.statusCode = 404;
          res.end();
          return;
        }
        if (hit.stored.metadata !== null) res.setHeader("cf-kv-metadata", hit.stored.metadata);
        res.end(hit.stored.value);
        return;
      }
      if (req.method === "PUT") {
        const stored = { value: Buffer.concat(chunks), metadata: (req.headers["cf-kv-metadata"] as string | undefined) ?? null };
        central.set(key, stored);
        cache.set(key, { stored, at: now() }); // the writing location reads its own write at once
        res.end();
        return;
      }
      if (req.method === "DELETE") {
        central.delete(key);
        cache.set(key, { stored: undefined, at: now() });
        res.end();
        return;
      }
      res.statusCode = 405;
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, o.host, () => resolve());
  });
  const url = `http://${o.host}:${(server.address() as AddressInfo).port}`;
  return {
    url,
    reads,
    moduleFor: (location) => `// KV of location ${location}: forwarded to the simulation's KV hub.
const HUB = ${JSON.stringify(`${url}/${encodeURIComponent(location)}`)};
export default {
  async fetch(request) {
    const u = new URL(request.url);
    const headers = new Headers();
    const meta = request.headers.get("cf-kv-metadata");
    if (meta !== null) headers.set("cf-kv-metadata", meta);
    const body = request.method === "PUT" ? await request.arrayBuffer() : undefined;
    return fetch(HUB + u.pathname + u.search, { method: request.method, headers, body });
  },
};
`,
    setPropagationMs: (ms) => (propagationMs = ms),
    refreshReadTimes: (location) => {
      for (const hit of cacheOf(location).values()) hit.at = now();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
