// A small HTTP proxy in front of the worker's push endpoint, so the chaos
// suite can make the agent's sink fail the way a real edge does under trouble
// (500 from a broken deploy, 429 with Retry-After from rate limiting) while
// end users keep talking to the worker directly.
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface SinkFault {
  status: number;
  /** Sent as Retry-After (seconds), like Cloudflare's rate limiter. */
  retryAfterSeconds?: number;
}

export interface FaultProxy {
  /** Base URL to give the agent as --worker-url. */
  url: string;
  /** null lets requests through to the worker. */
  setFault(fault: SinkFault | null): void;
  /** Every request the proxy answered itself, in order. */
  readonly injected: { method: string; path: string; status: number }[];
  /** Requests passed through to the worker. */
  readonly forwarded: { method: string; path: string; status: number }[];
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"]);

export async function startFaultProxy(target: string, host = "127.0.0.1"): Promise<FaultProxy> {
  let fault: SinkFault | null = null;
  const injected: FaultProxy["injected"] = [];
  const forwarded: FaultProxy["forwarded"] = [];
  const sockets = new Set<Socket>();

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const current = fault;
    if (current) {
      injected.push({ method, path, status: current.status });
      res.writeHead(current.status, {
        "content-type": "application/json",
        ...(current.retryAfterSeconds !== undefined ? { "retry-after": String(current.retryAfterSeconds) } : {}),
      });
      res.end(JSON.stringify({ error: `injected by the chaos suite: ${current.status}` }));
      return;
    }
    try {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (v !== undefined && !HOP_BY_HOP.has(k)) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
      }
      const upstream = await fetch(`${target}${path}`, {
        method,
        headers,
        ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
      });
      const body = Buffer.from(await upstream.arrayBuffer());
      forwarded.push({ method, path, status: upstream.status });
      const out: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (!HOP_BY_HOP.has(k)) out[k] = v;
      });
      res.writeHead(upstream.status, out).end(body);
    } catch (err) {
      // The worker itself being unreachable is not a fault this suite injects: make it loud.
      forwarded.push({ method, path, status: 599 });
      res.writeHead(502, { "content-type": "text/plain" }).end(`fault proxy: worker unreachable: ${(err as Error).message}\n`);
    }
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    setFault(f) {
      fault = f;
    },
    injected,
    forwarded,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
