// Node gates in front of simulated nodes for the worker suites (Node side of
// test/worker/gate.test.ts), on this suite's own range 127.23.<group>.11…
// Control endpoint on 127.23.0.10: make a group (nodes + a gate on each), break
// a node's app or stop its gate, release the group. A group made with {nat: true}
// lives on 127.62.<n>.x and is reached as through NAT: each gate listens on its
// node's own address (.11…) and the edge connects to another address (.111…)
// that a TCP forwarder carries to it, so the gate never sees the address the edge dialled.
import { spawn, type ChildProcess } from "node:child_process";
import net, { type AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";
import { SimNode, type NodeBehavior } from "../../lab/cluster/sim-node.ts";
import { createLogger } from "../../sync-agent/log/index.ts";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { GATE_DEFAULTS, startGate, type Gate } from "../../sync-agent/gate/main.ts";
import { jsonServer } from "./json-server.ts";

/** The key the suite's gates accept; the edge signs with "k1:<this>". */
export const GATE_TEST_SECRET = "worker-suite-gate-secret-0123456789abcdef";

export interface GateGroup {
  id: number;
  /** The edgelb cluster the group's gates belong to: snapshots for these nodes must name it. */
  cluster: string;
  /** The addresses the edge connects to (for a NAT group: the forwarders', not the nodes' own). */
  nodes: { name: string; address: string }[];
  nodePort: number;
  gatePort: number;
}

declare module "vitest" {
  export interface ProvidedContext {
    gateLab: { control: string; secret: string };
  }
}

interface Member {
  node: SimNode;
  gate: Gate | undefined;
  /** The gate forwards to a NodePort that drops connections (a stopped listener with a full accept queue). */
  dropping?: { listener: ChildProcess; fillers: net.Socket[] };
  /** NAT groups: the forwarder from the published address to the gate. */
  nat?: net.Server;
}

/** A 1:1 NAT stand-in: every connection to listenHost:port is carried to toHost:port. */
async function natForwarder(listenHost: string, toHost: string, port: number): Promise<net.Server> {
  const server = net.createServer((inbound) => {
    const outbound = net.connect(port, toHost);
    inbound.on("error", () => outbound.destroy());
    outbound.on("error", () => inbound.destroy());
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, listenHost, resolve);
  });
  return server;
}

export default async function setup(project: TestProject) {
  const groups = new Map<number, { members: Member[]; gatePort: number }>();
  const byName = new Map<string, { member: Member; gatePort: number; cluster: string; nodePort: number }>();
  let next = 2;
  const log = createLogger({ format: "json", level: "silent" });
  const keys = KeyRing.of({ k1: GATE_TEST_SECRET });
  const openGate = (node: SimNode, port: number, cluster: string, secret?: string, upstream?: { nodeIp: string; connectTimeoutMs: number }) =>
    startGate(
      {
        ...GATE_DEFAULTS,
        listen: `${node.address}:${port}`,
        connect: "node",
        nodeIp: node.address,
        nodeName: node.name,
        clusterName: cluster,
        nodePorts: { min: 1, max: 65535 },
        metricsAddress: "",
        logFormat: "json",
        logLevel: "silent",
        ...upstream,
      },
      { log, keys: secret === undefined ? keys : KeyRing.of({ k1: secret }) },
    );
  let dropAddresses = 0;
  /**
   * A NodePort that drops connections (rv-proxy 6): on an address of its own (gt15's range 127.101.5.x), a
   * listener whose process stopped itself, its accept queue filled, so the kernel drops further SYNs.
   */
  const droppingNodePort = async (nodePort: number) => {
    const address = `127.101.5.${11 + dropAddresses++}`;
    const listener = spawn(process.execPath, ["-e", `require("net").createServer().listen({ host: "${address}", port: ${nodePort}, backlog: 1 }, () => { console.log("ready"); process.kill(process.pid, "SIGSTOP"); })`], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise((resolve) => listener.stdout!.once("data", resolve));
    const fillers: net.Socket[] = [];
    let established = 0;
    for (let i = 0; i < 4; i++) {
      const f = net.connect(nodePort, address, () => established++);
      f.on("error", () => undefined);
      fillers.push(f);
    }
    for (let waited = 0; established < 2 && waited < 5_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    return { address, dropping: { listener, fillers } };
  };
  const stopDropping = (m: Member) => {
    for (const f of m.dropping?.fillers ?? []) f.destroy();
    m.dropping?.listener.kill("SIGKILL");
    m.dropping = undefined;
  };

  const control = jsonServer((req, body, json) => {
    const path = new URL(req.url ?? "/", "http://control").pathname;
    const run = async () => {
      if (req.method === "POST" && path === "/groups") {
        const opts = JSON.parse(body || "{}") as { count?: number; nat?: boolean };
        const count = Math.min(5, Math.max(1, Number(opts.count ?? 3)));
        const id = next++;
        const net16 = opts.nat ? "127.62" : "127.23";
        const nodes = await Promise.all(Array.from({ length: count }, (_, i) => SimNode.start({ name: `gated-${id}-${String.fromCharCode(97 + i)}`, address: `${net16}.${id}.${11 + i}`, healthzPort: 0 })));
        const nodePort = await nodes[0]!.servePort(0);
        await Promise.all(nodes.slice(1).map((n) => n.servePort(nodePort)));
        // The edgelb cluster these gates belong to: the edge must sign for it (issue 15, rv-attack 2).
        const cluster = `gated-${id}`;
        const first = await openGate(nodes[0]!, 0, cluster);
        const members: Member[] = [{ node: nodes[0]!, gate: first }];
        for (const n of nodes.slice(1)) members.push({ node: n, gate: await openGate(n, first.port, cluster) });
        const published = nodes.map((n, i) => (opts.nat ? `${net16}.${id}.${111 + i}` : n.address));
        if (opts.nat) for (const [i, m] of members.entries()) m.nat = await natForwarder(published[i]!, m.node.address, first.port);
        groups.set(id, { members, gatePort: first.port });
        for (const m of members) byName.set(m.node.name, { member: m, gatePort: first.port, cluster, nodePort });
        const group: GateGroup = { id, cluster, nodes: nodes.map((n, i) => ({ name: n.name, address: published[i]! })), nodePort, gatePort: first.port };
        return json(200, group);
      }
      const behavior = /^\/nodes\/([\w-]+)\/behavior$/.exec(path);
      if (req.method === "POST" && behavior) {
        const entry = byName.get(behavior[1]!);
        if (!entry) return json(404, { error: "unknown node" });
        await entry.member.node.setBehavior(JSON.parse(body) as NodeBehavior);
        return json(200, {});
      }
      const gate = /^\/nodes\/([\w-]+)\/gate$/.exec(path);
      if (req.method === "POST" && gate) {
        const entry = byName.get(gate[1]!);
        if (!entry) return json(404, { error: "unknown node" });
        // {up, secret?, dropNodePort?}: a secret restarts the gate with that key instead of the suite's;
        // dropNodePort restarts it in front of a NodePort that drops connections (connect timeout 300 ms).
        const { up, secret, dropNodePort } = JSON.parse(body) as { up: boolean; secret?: string; dropNodePort?: boolean };
        if ((!up || secret !== undefined || Boolean(dropNodePort) !== Boolean(entry.member.dropping)) && entry.member.gate) {
          await entry.member.gate.close();
          entry.member.gate = undefined;
        }
        if (!dropNodePort) stopDropping(entry.member);
        if (up && !entry.member.gate) {
          let upstream: { nodeIp: string; connectTimeoutMs: number } | undefined;
          if (dropNodePort) {
            const d = await droppingNodePort(entry.nodePort);
            entry.member.dropping = d.dropping;
            upstream = { nodeIp: d.address, connectTimeoutMs: 300 };
          }
          entry.member.gate = await openGate(entry.member.node, entry.gatePort, entry.cluster, secret, upstream);
        }
        return json(200, {});
      }
      const release = /^\/groups\/(\d+)$/.exec(path);
      if (req.method === "DELETE" && release) {
        const group = groups.get(Number(release[1]));
        groups.delete(Number(release[1]));
        for (const m of group?.members ?? []) {
          byName.delete(m.node.name);
          stopDropping(m);
          m.nat?.close();
          await m.gate?.close();
          await m.node.stop();
        }
        return json(200, {});
      }
      json(404, { error: `unknown control path ${req.method} ${path}` });
    };
    run().catch((err: Error) => json(500, { error: err.message }));
  });
  await new Promise<void>((resolve) => control.listen(0, "127.23.0.10", resolve));
  project.provide("gateLab", { control: `http://127.23.0.10:${(control.address() as AddressInfo).port}`, secret: GATE_TEST_SECRET });

  return async () => {
    control.close();
    for (const g of groups.values()) for (const m of g.members) {
      stopDropping(m);
      m.nat?.close();
      await m.gate?.close();
      await m.node.stop();
    }
  };
}
