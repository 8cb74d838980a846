// Issue 19: a blackholed NodePort drops connection attempts silently, as a
// dropping firewall or kube-proxy's DROP rule does, so a client's connect()
// waits for its own timeout: neither refused nor reset. Own range 127.67.1.x.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Blackhole } from "../../lab/cluster/blackhole.ts";
import { startCluster } from "../../lab/cluster/cluster.ts";
import { SimNode } from "../../lab/cluster/sim-node.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** One connect(): "connected", the error code (refused, reset), or "timeout" when nothing answered within `ms`. */
function tryConnect(host: string, port: number, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve("timeout");
    }, ms);
    s.once("connect", () => {
      clearTimeout(timer);
      s.destroy();
      resolve("connected");
    });
    s.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code ?? e.message);
    });
  });
}

async function node(host: number): Promise<SimNode> {
  const n = await SimNode.start({ name: `node-${host}`, address: `127.67.1.${host}`, healthzPort: 0 });
  cleanups.push(() => n.stop());
  return n;
}

/** A free port on `host` (listened on and closed again). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen({ host, port: 0 }, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Clients connecting to host:port over and over (a stale location's traffic): each that connects
 * sends a request and waits for an answer or a reset; `open` holds those connected and not yet ended.
 */
function hammer(host: string, port: number, loops: number): { open: Set<net.Socket>; stop: () => void } {
  const open = new Set<net.Socket>();
  let running = true;
  const one = (): void => {
    if (!running) return;
    const s = net.connect({ host, port });
    // A dropped SYN: give up on it and try again (the client's own connect timeout).
    const giveUp = setTimeout(() => s.destroy(), 100);
    s.once("connect", () => {
      clearTimeout(giveUp);
      open.add(s);
      s.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    });
    s.on("error", () => {});
    s.once("close", () => {
      clearTimeout(giveUp);
      open.delete(s);
      setImmediate(one);
    });
  };
  for (let i = 0; i < loops; i++) one();
  return {
    open,
    stop: () => {
      running = false;
    },
  };
}

describe("blackhole (dropped connection attempts)", () => {
  it("connections that reach a port just as it starts dropping are reset, never left connected to a listener that never answers", async () => {
    const host = "127.75.9.1";
    for (let round = 0; round < 6; round++) {
      const port = await freePort(host);
      // Traffic arrives while the port switches to dropping (as at a Local Service's old node).
      const traffic = hammer(host, port, 8);
      // New attempts stop as the switch begins; those already under way land during it.
      const opening = Blackhole.open(host, port);
      traffic.stop();
      const hole = await opening;
      // A connection that got into the queue before the port was full would wait forever for an
      // answer (the client sees a hang, not a connect timeout): it must have been reset instead.
      const deadline = Date.now() + 3_000;
      while (traffic.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const hanging = traffic.open.size;
      for (const s of traffic.open) s.destroy();
      await hole.close();
      expect(hanging, `round ${round}: connections left hanging in the blackhole's queue`).toBe(0);
    }
  });

  it("a connect() to a blackhole gets no answer until its own timeout; once closed, the port refuses", async () => {
    const hole = await Blackhole.open("127.67.1.1", 0);
    let closed = false;
    cleanups.push(async () => {
      if (!closed) await hole.close();
    });
    // Several attempts in a row, each waiting 700 ms: none connects, none is refused or reset.
    const attempts = await Promise.all([1, 2, 3].map(() => tryConnect("127.67.1.1", hole.port, 700)));
    expect(attempts).toEqual(["timeout", "timeout", "timeout"]);
    await hole.close();
    closed = true;
    expect(await tryConnect("127.67.1.1", hole.port, 2_000)).toBe("ECONNREFUSED");
  });

  it("a node in drop mode blackholes every NodePort; back to ok, it answers again on the same port", async () => {
    const n = await node(11);
    const port = await n.servePort(0);
    expect(await tryConnect(n.address, port, 2_000)).toBe("connected");
    await n.setBehavior({ mode: "drop" });
    expect(n.drops(port)).toBe(true);
    expect(await tryConnect(n.address, port, 700)).toBe("timeout");
    await n.setBehavior({ mode: "refuse" });
    expect(await tryConnect(n.address, port, 2_000)).toBe("ECONNREFUSED");
    await n.setBehavior({ mode: "ok" });
    expect((await fetch(`http://${n.address}:${port}/`)).status).toBe(200);
  });

  it("one NodePort of a node drops (a route without endpoints that drops) while its other NodePorts answer", async () => {
    const n = await node(12);
    const a = await n.servePort(0);
    const b = await n.servePort(0);
    const pod = { namespace: "default", pod: "web-1", node: "node-99", ip: "10.0.0.1", version: "1" };
    await n.setRoute(a, { endpoints: [], drop: true });
    await n.setRoute(b, { endpoints: [pod] });
    expect(await tryConnect(n.address, a, 700)).toBe("timeout");
    expect((await fetch(`http://${n.address}:${b}/`)).status).toBe(200);
    // No endpoint anywhere: REJECT, refused at once.
    await n.setRoute(a, { endpoints: [] });
    expect(await tryConnect(n.address, a, 2_000)).toBe("ECONNREFUSED");
    await n.setRoute(a, { endpoints: [pod] });
    expect((await fetch(`http://${n.address}:${a}/`)).status).toBe(200);
  });

  it("a Local Service whose pods move off a node: that node's NodePort drops new connections, the pods' nodes answer", async () => {
    const cluster = await startCluster({ nodes: 3, addressBase: "127.67.2", healthzPort: 0, standIn: true, placedLocalDrops: true });
    cleanups.push(() => cluster.stop());
    cluster.create({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "local", namespace: "default" },
      spec: { type: "LoadBalancer", externalTrafficPolicy: "Local", selector: { app: "local" }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    await cluster.placePods("local", ["node-1", "node-3"]);
    await cluster.settled();
    const port = Number(cluster.get("Service", "local").spec.ports[0].nodePort);
    const answer = async (node: string) => (await fetch(`http://${cluster.node(node).address}:${port}/`)).headers.get("x-edgelb-node");
    expect(await answer("node-3")).toBe("node-3");
    expect(await tryConnect(cluster.node("node-2").address, port, 700)).toBe("timeout");
    // A rollout moves the pods to node-1 and node-2: node-3 drops, node-2 answers.
    await cluster.placePods("local", ["node-1", "node-2"]);
    await cluster.settled();
    expect(await tryConnect(cluster.node("node-3").address, port, 700)).toBe("timeout");
    expect(await answer("node-2")).toBe("node-2");
    expect(await answer("node-1")).toBe("node-1");
  });
});
