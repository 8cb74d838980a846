// Loopback origins for the request-path suites (retry rule, retry budget,
// request bodies, request guard, error bodies), in their own range 127.12.0.0/16
// so that other suites never share them. Behaviour is chosen per request by
// path, so parallel tests never disturb each other; every request is counted
// under its `tag` query parameter, so a test can ask how often a node was hit:
// - three nodes (127.12.0.11-13) on one port, each answering
//   /echo               200 with what it received (JSON, as the sim nodes do)
//   /reset-after-read   reads the whole request, then resets the connection
//   /status/<code>      reads the request, answers <code> (?retry-after=N adds the header)
//   /duplex             200 at once, echoing request chunks as they arrive
//   /hang               reads the request, never answers
// - 127.12.0.99, where nothing listens on that port;
// - a control endpoint (127.12.0.1): GET /hits/<tag> → { count, nodes }.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";
import { jsonServer } from "./json-server.ts";

export interface RequestPathOrigins {
  nodes: { name: string; address: string }[];
  port: number;
  deadAddress: string;
  control: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    requestPath: RequestPathOrigins;
  }
}

const hits = new Map<string, { count: number; nodes: string[] }>();

function node(name: string): http.Server {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://origin");
    const tag = url.searchParams.get("tag");
    if (tag !== null) {
      const h = hits.get(tag) ?? { count: 0, nodes: [] };
      h.count++;
      h.nodes.push(name);
      hits.set(tag, h);
    }
    if (url.pathname === "/duplex") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      req.on("data", (d: Buffer) => res.write(d));
      req.on("end", () => res.end());
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("error", () => {});
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const status = /^\/status\/(\d{3})$/.exec(url.pathname);
      if (url.pathname === "/reset-after-read") return void req.socket.resetAndDestroy();
      if (url.pathname === "/hang") return;
      if (status) {
        const retryAfter = url.searchParams.get("retry-after");
        res.writeHead(Number(status[1]), { "content-type": "text/plain", ...(retryAfter ? { "retry-after": retryAfter } : {}) });
        return void res.end(`${name}: ${status[1]}\n`);
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          node: name,
          method: req.method,
          path: url.pathname,
          query: url.search,
          headers: req.headers,
          bodyBytes: body.length,
          body: body.toString("utf8"),
        }),
      );
    });
  });
  server.on("clientError", (_e, socket) => socket.destroy());
  return server;
}

function listen(server: http.Server, address: string, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => resolve((server.address() as AddressInfo).port));
  });
}

export default async function setup(project: TestProject) {
  const names = ["rp-a", "rp-b", "rp-c"];
  const servers = names.map(node);
  const port = await listen(servers[0]!, "127.12.0.11");
  await Promise.all(servers.slice(1).map((s, i) => listen(s, `127.12.0.${12 + i}`, port)));
  const control = jsonServer((req, _body, json) => {
    const m = /^\/hits\/([\w-]+)$/.exec(req.url ?? "");
    if (req.method === "GET" && m) return json(200, hits.get(m[1]!) ?? { count: 0, nodes: [] });
    json(404, { error: `unknown control path ${req.method} ${req.url}` });
  });
  const controlPort = await listen(control, "127.12.0.1");
  project.provide("requestPath", {
    nodes: names.map((name, i) => ({ name, address: `127.12.0.${11 + i}` })),
    port,
    deadAddress: "127.12.0.99",
    control: `http://127.12.0.1:${controlPort}`,
  });
  return async () => {
    for (const s of [...servers, control]) s.closeAllConnections();
    await Promise.all([...servers, control].map((s) => new Promise((r) => s.close(r))));
  };
}
