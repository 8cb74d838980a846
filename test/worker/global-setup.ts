// Real HTTP origins on loopback for the worker project, started in Node before
// the tests run inside workerd (which reaches them over TCP):
// - three simulated nodes on 127.0.0.11-13 serving one NodePort, for tests that
//   only read (routing, balancing, proxy fidelity);
// - node groups made on demand on their own /24 (127.0.<n>.11…) for tests that
//   break nodes, so parallel test files never disturb each other;
// - a "lab" origin on 127.0.0.14 whose responses wait for the test, to show
//   that bodies stream instead of being buffered;
// - 127.0.0.15, where nothing listens;
// - 127.0.0.16, a "black hole" on the shared NodePort: a listener whose accept
//   queue is full and whose process never accepts, so the kernel drops new SYNs
//   and connecting times out (a powered-off node, without root or iptables);
// - a control endpoint (127.0.0.10) through which tests in workerd make groups,
//   change a node's behaviour, open gates and release groups.
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";
import { Blackhole } from "../../lab/cluster/blackhole.ts";
import { SimNode, type NodeBehavior } from "../../lab/cluster/sim-node.ts";
import { jsonServer } from "./json-server.ts";

export interface SimGroup {
  id: number;
  nodes: { name: string; address: string }[];
  nodePort: number;
}

export interface EdgeLab {
  /** The shared read-only nodes 127.0.0.11-13. */
  nodes: { name: string; address: string }[];
  nodePort: number;
  deadAddress: string;
  /** Connecting to blackhole:nodePort never completes. */
  blackhole: string;
  lab: { address: string; port: number };
  control: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    edgeLab: EdgeLab;
  }
}

function listen(server: http.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, address, () => resolve((server.address() as AddressInfo).port));
  });
}

async function startGroup(id: number, count: number, prefix: string): Promise<{ nodes: SimNode[]; nodePort: number }> {
  const nodes = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      SimNode.start({ name: `${prefix}-${String.fromCharCode(97 + i)}`, address: `127.0.${id}.${11 + i}`, healthzPort: 0 }),
    ),
  );
  const nodePort = await nodes[0]!.servePort(0);
  await Promise.all(nodes.slice(1).map((n) => n.servePort(nodePort)));
  return { nodes, nodePort };
}

/**
 * The lab origin. GET /gate/<id>: sends "first\n" at once and the rest only
 * after POST /gates/<id>/open on the control endpoint. POST /duplex: answers
 * at once and echoes every request chunk back as it arrives.
 */
function labServer(gates: Map<string, () => void>, opened: Set<string>): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://lab");
    const gate = /^\/gate\/([\w-]+)$/.exec(url.pathname);
    if (gate) {
      const id = gate[1]!;
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first\n");
      const finish = () => res.end("last\n");
      if (opened.has(id)) finish();
      else gates.set(id, finish);
      return;
    }
    if (url.pathname === "/duplex") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      req.on("data", (d: Buffer) => res.write(d));
      req.on("end", () => res.end());
      return;
    }
    res.writeHead(404).end();
  });
}

/**
 * A child process listens with backlog 1 and then blocks its event loop for
 * good, so it never accepts. Two connections fill the kernel's accept queue;
 * after that, connects hang until the client gives up.
 */
export default async function setup(project: TestProject) {
  const shared = await startGroup(0, 3, "node");
  const groups = new Map<number, SimNode[]>();
  let nextGroup = 20;

  const gates = new Map<string, () => void>();
  const opened = new Set<string>();
  const lab = labServer(gates, opened);
  const labPort = await listen(lab, "127.0.0.14");

  const findNode = (name: string) => [...groups.values()].flat().find((n) => n.name === name);
  const control = jsonServer((req, body, json) => {
    const fail = (e: Error) => json(500, { error: e.message });
    const path = req.url ?? "/";
    let m: RegExpExecArray | null;
    if (req.method === "POST" && path === "/groups") {
      const { count = 3 } = (body ? JSON.parse(body) : {}) as { count?: number };
      const id = nextGroup++;
      startGroup(id, count, `g${id}`).then(({ nodes, nodePort }) => {
        groups.set(id, nodes);
        const group: SimGroup = { id, nodes: nodes.map((n) => ({ name: n.name, address: n.address })), nodePort };
        json(200, group);
      }, fail);
      return;
    }
    if (req.method === "DELETE" && (m = /^\/groups\/(\d+)$/.exec(path))) {
      const nodes = groups.get(Number(m[1])) ?? [];
      groups.delete(Number(m[1]));
      Promise.all(nodes.map((n) => n.stop())).then(() => json(200, { ok: true }), fail);
      return;
    }
    if (req.method === "POST" && (m = /^\/nodes\/([^/]+)\/behavior$/.exec(path))) {
      const node = findNode(m[1]!);
      if (!node) return json(404, { error: `no node ${m[1]} (only group nodes can be changed)` });
      node.setBehavior(JSON.parse(body) as NodeBehavior).then(() => json(200, { ok: true }), fail);
      return;
    }
    if (req.method === "POST" && (m = /^\/gates\/([\w-]+)\/open$/.exec(path))) {
      opened.add(m[1]!);
      gates.get(m[1]!)?.();
      gates.delete(m[1]!);
      return json(200, { ok: true });
    }
    json(404, { error: `unknown control path ${req.method} ${path}` });
  });
  const controlPort = await listen(control, "127.0.0.10");
  // Connections to it get no answer (lab/cluster/blackhole.ts: a full accept queue nobody accepts).
  const blackhole = await Blackhole.open("127.0.0.16", shared.nodePort);

  project.provide("edgeLab", {
    nodes: shared.nodes.map((n) => ({ name: n.name, address: n.address })),
    nodePort: shared.nodePort,
    deadAddress: "127.0.0.15",
    blackhole: "127.0.0.16",
    lab: { address: "127.0.0.14", port: labPort },
    control: `http://127.0.0.10:${controlPort}`,
  });

  return async () => {
    for (const finish of gates.values()) finish();
    await blackhole.close();
    const close = (s: http.Server) =>
      new Promise((r) => {
        s.closeAllConnections();
        s.close(r);
      });
    await Promise.all([
      ...shared.nodes.map((n) => n.stop()),
      ...[...groups.values()].flat().map((n) => n.stop()),
      close(lab),
      close(control),
    ]);
  };
}
