// Nodes for the connect-hedging suite (test/worker/connect-hedge.test.ts), on
// its own range 127.85.x.x, all on one NodePort:
// - two answering nodes (127.85.0.12, .13) that count every request by path
//   and every connection, so a test can show a request reached one node once;
// - two dark nodes (127.85.0.11, .14): blackholes that never answer a connect;
// - "late" nodes made on demand (127.85.1.n): dark until the test opens them,
//   then answering, so a connect that lost the race opens after the winner;
// - dark nodes on a port of the test's choosing (127.85.2.n), e.g. a gate's port.
// Control endpoint on 127.85.0.10.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";
import { Blackhole } from "../../lab/cluster/blackhole.ts";
import { jsonServer } from "./json-server.ts";

export interface HedgeLab {
  nodePort: number;
  answering: { name: string; address: string }[];
  dark: { name: string; address: string }[];
  control: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    hedgeLab: HedgeLab;
  }
}

interface Counts {
  /** `${address} ${method} ${path}` → requests. */
  requests: Map<string, number>;
  /** address → connections accepted. */
  connections: Map<string, number>;
}

function countingNode(name: string, address: string, counts: Counts): http.Server {
  const server = http.createServer((req, res) => {
    const key = `${address} ${req.method} ${req.url}`;
    counts.requests.set(key, (counts.requests.get(key) ?? 0) + 1);
    let bytes = 0;
    req.on("data", (d: Buffer) => (bytes += d.length));
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", "x-edgelb-node": name });
      res.end(JSON.stringify({ node: name, method: req.method, path: req.url, bodyBytes: bytes }));
    });
  });
  server.on("connection", () => counts.connections.set(address, (counts.connections.get(address) ?? 0) + 1));
  return server;
}

function listen(server: http.Server, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => resolve((server.address() as AddressInfo).port));
  });
}

export default async function setup(project: TestProject) {
  const counts: Counts = { requests: new Map(), connections: new Map() };
  const servers: http.Server[] = [];
  const answering = [
    { name: "hedge-b", address: "127.85.0.12" },
    { name: "hedge-c", address: "127.85.0.13" },
  ];
  const first = countingNode(answering[0]!.name, answering[0]!.address, counts);
  servers.push(first);
  const nodePort = await listen(first, answering[0]!.address, 0);
  const second = countingNode(answering[1]!.name, answering[1]!.address, counts);
  servers.push(second);
  await listen(second, answering[1]!.address, nodePort);
  const dark = [
    { name: "hedge-dark-a", address: "127.85.0.11" },
    { name: "hedge-dark-d", address: "127.85.0.14" },
  ];
  const holes = await Promise.all(dark.map((d) => Blackhole.open(d.address, nodePort)));
  const late = new Map<number, Blackhole>();
  let nextLate = 11;
  let nextDark = 11;

  const control = jsonServer((req, _body, json) => {
    const url = new URL(req.url ?? "/", "http://control");
    let m: RegExpExecArray | null;
    if (req.method === "POST" && url.pathname === "/late") {
      const n = nextLate++;
      const address = `127.85.1.${n}`;
      Blackhole.open(address, nodePort).then(
        (hole) => {
          late.set(n, hole);
          json(200, { name: `hedge-late-${n}`, address, id: n });
        },
        (e: Error) => json(500, { error: e.message }),
      );
      return;
    }
    if (req.method === "POST" && url.pathname === "/dark") {
      const n = nextDark++;
      const address = `127.85.2.${n}`;
      Blackhole.open(address, Number(url.searchParams.get("port"))).then(
        (hole) => {
          holes.push(hole);
          json(200, { name: `hedge-dark-${n}`, address });
        },
        (e: Error) => json(500, { error: e.message }),
      );
      return;
    }
    if (req.method === "POST" && (m = /^\/late\/(\d+)\/open$/.exec(url.pathname))) {
      const n = Number(m[1]);
      const hole = late.get(n);
      if (!hole) return json(404, { error: `no dark late node ${n}` });
      late.delete(n);
      // The port answers again: a connect whose SYN the blackhole dropped opens at its next retransmission.
      const server = countingNode(`hedge-late-${n}`, hole.address, counts);
      servers.push(server);
      hole
        .close()
        .then(() => listen(server, hole.address, nodePort))
        .then(
          () => json(200, { ok: true }),
          (e: Error) => json(500, { error: e.message }),
        );
      return;
    }
    if (req.method === "GET" && url.pathname === "/seen") {
      // Requests per node address for one method and path, and connections per address.
      const method = url.searchParams.get("method") ?? "GET";
      const path = url.searchParams.get("path") ?? "/";
      const requests: Record<string, number> = {};
      for (const [key, n] of counts.requests) {
        const [address, m2, p] = key.split(" ");
        if (m2 === method && p === path) requests[address!] = n;
      }
      return json(200, { requests, connections: Object.fromEntries(counts.connections) });
    }
    json(404, { error: `unknown control path ${req.method} ${url.pathname}` });
  });
  const controlPort = await listen(control, "127.85.0.10", 0);

  project.provide("hedgeLab", { nodePort, answering, dark, control: `http://127.85.0.10:${controlPort}` });

  return async () => {
    await Promise.all([...holes, ...late.values()].map((h) => h.close()));
    await Promise.all(
      [...servers, control].map(
        (s) =>
          new Promise((r) => {
            s.closeAllConnections();
            s.close(r);
          }),
      ),
    );
  };
}
