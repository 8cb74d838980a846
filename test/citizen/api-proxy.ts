// A recording, fault-injecting HTTP proxy in front of the (fake) Kubernetes
// API server. Each agent in a test gets its own proxy, so the test can see
// exactly which API calls that agent made (for the RBAC check) and cut it off
// from the API server alone (a partition) while the others carry on.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface RecordedRequest {
  method: string;
  url: string;
  status: number;
  contentType: string | undefined;
  /** When the request arrived (epoch ms). */
  at: number;
}

export type ProxyMode = "pass" | "fail";

export interface ApiProxy {
  readonly url: string;
  readonly log: RecordedRequest[];
  /** "fail": every request gets 503 and open watches are cut, like a network partition. */
  setMode(mode: ProxyMode): void;
  close(): Promise<void>;
}

export async function startApiProxy(target: string, host = "127.0.0.1"): Promise<ApiProxy> {
  const upstream = new URL(target);
  let mode: ProxyMode = "pass";
  const log: RecordedRequest[] = [];
  const open = new Set<ServerResponse>();
  const sockets = new Set<Socket>();

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const entry: RecordedRequest = { method: req.method ?? "GET", url: req.url ?? "/", status: 0, contentType: req.headers["content-type"], at: Date.now() };
    log.push(entry);
    if (mode === "fail") {
      entry.status = 503;
      res.writeHead(503, { "content-type": "application/json" }).end(
        JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message: "injected partition", reason: "ServiceUnavailable", code: 503 }),
      );
      return;
    }
    const up = request(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (upRes) => {
        entry.status = upRes.statusCode ?? 0;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        open.add(res);
        upRes.pipe(res);
        upRes.on("error", () => res.destroy());
        res.on("close", () => {
          open.delete(res);
          upRes.destroy();
        });
      },
    );
    up.on("error", (err) => {
      entry.status = 502;
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`proxy: ${err.message}`);
    });
    req.pipe(up);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    log,
    setMode(m) {
      mode = m;
      // A partition also breaks the watches already open.
      if (m === "fail") for (const r of open) r.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
