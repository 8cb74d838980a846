import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { SimNode } from "../../lab/cluster/sim-node.ts";

// Own /24 so this file never collides with other suites on address:port.
const nodes: SimNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

async function start(host: number): Promise<SimNode> {
  const n = await SimNode.start({ name: `node-${host}`, address: `127.0.90.${host}`, healthzPort: 0 });
  nodes.push(n);
  return n;
}

describe("SimNode", () => {
  it("serves the same NodePort on each node's own address", async () => {
    const a = await start(11);
    const b = await start(12);
    const port = await a.servePort(0);
    await b.servePort(port);
    const ra = await (await fetch(`http://127.0.90.11:${port}/x?y=1`)).json();
    const rb = await (await fetch(`http://127.0.90.12:${port}/x?y=1`)).json();
    expect(ra).toMatchObject({ node: "node-11", method: "GET", path: "/x", query: "y=1" });
    expect(rb).toMatchObject({ node: "node-12" });
  });

  it("refuses, errors and recovers on command", async () => {
    const a = await start(13);
    const port = await a.servePort(0);
    await a.setBehavior({ mode: "refuse" });
    await expect(fetch(`http://127.0.90.13:${port}/`)).rejects.toThrow();
    await a.setBehavior({ mode: "error", status: 502 });
    expect((await fetch(`http://127.0.90.13:${port}/`)).status).toBe(502);
    await a.setBehavior({ mode: "ok" });
    expect((await fetch(`http://127.0.90.13:${port}/`)).status).toBe(200);
  });

  it("answers kube-proxy healthz and a Local healthCheckNodePort like kube-proxy", async () => {
    const a = await start(14);
    const hz = `http://127.0.90.14:${a.healthzPort}/healthz`;
    expect((await fetch(hz)).status).toBe(200);
    a.setHealthy(false);
    expect((await fetch(hz)).status).toBe(503);
  });

  it("serves healthCheckNodePort with the endpoint weight", async () => {
    const a = await start(15);
    const hcPort = 32000 + Math.floor(Math.random() * 700);
    await a.setLocalEndpoints(hcPort, 2);
    const ok = await fetch(`http://127.0.90.15:${hcPort}/anything`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-load-balancing-endpoint-weight")).toBe("2");
    expect(await ok.json()).toMatchObject({ localEndpoints: 2 });
    await a.setLocalEndpoints(hcPort, 0);
    expect((await fetch(`http://127.0.90.15:${hcPort}/`)).status).toBe(503);
  });

  it("streams and uploads large bodies, and echoes WebSocket messages", async () => {
    const a = await start(16);
    const port = await a.servePort(0);
    const res = await fetch(`http://127.0.90.16:${port}/stream?bytes=${5 * 1024 * 1024}`);
    expect((await res.arrayBuffer()).byteLength).toBe(5 * 1024 * 1024);
    const up = await fetch(`http://127.0.90.16:${port}/upload`, { method: "POST", body: new Uint8Array(300_000) });
    expect(await up.json()).toMatchObject({ bodyBytes: 300_000 });
    const ws = new WebSocket(`ws://127.0.90.16:${port}/ws`);
    await new Promise((r) => ws.once("open", r));
    const got = new Promise<string>((r) => ws.once("message", (d) => r(d.toString())));
    ws.send("hello");
    expect(await got).toBe("hello");
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.send("close:4001");
    expect(await closed).toBe(4001);
  });
});
