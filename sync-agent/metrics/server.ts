// The agent's HTTP endpoints for Prometheus and the kubelet: /metrics,
// /healthz (the process is alive) and /readyz (from a readiness callback).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface Readiness {
  ready: boolean;
  reason: string;
}
export type ReadinessCheck = () => Readiness;

export interface MetricsServer {
  /** The address actually bound, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** `:9090`, `0.0.0.0:9090`, `127.0.0.1:0`, `[::1]:9090` → host and port; throws a clear message otherwise. */
export function parseListenAddress(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new Error(`metrics address "${addr}" must look like ":9090", "0.0.0.0:9090" or "[::]:9090"`);
  }
  const host = m[1] ?? (m[2] || undefined);
  return { host, port };
}

export async function startMetricsServer(addr: string, registry: Registry, readiness: ReadinessCheck): Promise<MetricsServer> {
  const { host, port } = parseListenAddress(addr);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (path === "/healthz" || path === "/livez") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (path === "/readyz") {
      let r: Readiness;
      try {
        r = readiness();
      } catch (err) {
        r = { ready: false, reason: `readiness check failed: ${(err as Error).message}` };
      }
      res.writeHead(r.ready ? 200 : 503, { "content-type": "text/plain" }).end(`${r.ready ? "ok" : "not ready"}: ${r.reason}\n`);
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`collecting metrics failed: ${err.message}\n`),
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics, /healthz or /readyz\n");
  });
  // Scrapes and probes are tiny; don't let a slow client hold the server.
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen for metrics on "${addr}": ${err.code === "EADDRINUSE" ? "address already in use" : err.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const shownHost = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${shownHost}:${bound.port}`,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
