// The node gate in front of simulated nodes (127.23.1.x): what passes, what
// gets a bare 403, and what an attacker facing it can and cannot do.
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { SimNode } from "../../lab/cluster/sim-node.ts";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { main, type GateConfig } from "../../sync-agent/gate/main.ts";
import { SIGNATURE_HEADER } from "../../worker/snapshot/signing.ts";
import { gateFor, metricsText, metricValue, raw, SECRET_1, SECRET_2, send, signature, signedRequest, nodeName, until, type TestGate } from "./harness.ts";

const A = "127.23.1.11";
const B = "127.23.1.12";
let nodeA: SimNode;
let nodeB: SimNode;
let port: number;
let gate: TestGate;

beforeAll(async () => {
  nodeA = await SimNode.start({ name: "gate-a", address: A, healthzPort: 0 });
  nodeB = await SimNode.start({ name: "gate-b", address: B, healthzPort: 0 });
  port = await nodeA.servePort(0);
  await nodeB.servePort(port);
  gate = await gateFor(A, {}, KeyRing.of({ k1: SECRET_1 }));
});
afterAll(async () => {
  await gate?.close();
  await nodeA?.stop();
  await nodeB?.stop();
});

const echo = (body: string) => JSON.parse(body) as { node: string; path: string; query: string; method: string; headers: Record<string, string>; bodyBytes: number; body: string };

describe("the node gate", () => {
  it("forwards a signed request to the signed NodePort on its node, without the signature header", async () => {
    const res = await signedRequest(gate, { node: nodeName(A), nodePort: port, method: "POST", target: "/orders?id=7", body: "hello", extraHeaders: ["Content-Length", "5", "X-App", "1"] });
    expect(res.status).toBe(200);
    const e = echo(res.body);
    expect(e).toMatchObject({ node: "gate-a", method: "POST", path: "/orders", query: "id=7", body: "hello" });
    expect(e.headers.host).toBe("app.example.com");
    expect(e.headers["x-app"]).toBe("1");
    expect(e.headers[SIGNATURE_HEADER]).toBeUndefined();
  });

  it("answers 403 with no detail to unsigned, wrong-key, stale, replayed and tampered requests", async () => {
    const bare = await send(gate, { headers: ["Host", "app.example.com"] });
    expect(bare).toMatchObject({ status: 403, body: "forbidden\n" });
    const other = await signedRequest(gate, { node: nodeName(A), nodePort: port, secret: SECRET_2 });
    expect(other).toMatchObject({ status: 403, body: "forbidden\n" });
    const stale = await signedRequest(gate, { node: nodeName(A), nodePort: port, timestamp: Math.floor(Date.now() / 1000) - 120 });
    expect(stale.status).toBe(403);

    const sig = await signature({ node: nodeName(A), nodePort: port, target: "/pay" });
    const first = await send(gate, { path: "/pay", headers: ["Host", "app.example.com", SIGNATURE_HEADER, sig] });
    expect(first.status).toBe(200);
    const replay = await send(gate, { path: "/pay", headers: ["Host", "app.example.com", SIGNATURE_HEADER, sig] });
    expect(replay).toMatchObject({ status: 403, body: "forbidden\n" });

    const path = await signature({ node: nodeName(A), nodePort: port, target: "/public" });
    expect((await send(gate, { path: "/admin", headers: ["Host", "app.example.com", SIGNATURE_HEADER, path] })).status).toBe(403);
    // Another port in the header: the signature no longer matches.
    const portSig = await signature({ node: nodeName(A), nodePort: port });
    const otherPort = portSig.replace(`;p=${port};`, `;p=${port === 30000 ? 30001 : 30000};`);
    expect((await send(gate, { headers: ["Host", "app.example.com", SIGNATURE_HEADER, otherPort] })).status).toBe(403);
    const host = await signature({ node: nodeName(A), nodePort: port, host: "app.example.com" });
    expect((await send(gate, { headers: ["Host", "admin.example.com", SIGNATURE_HEADER, host] })).status).toBe(403);
    // Signed for node B, sent to node A's gate.
    expect(await signedRequest(gate, { node: nodeName(B), nodePort: port })).toMatchObject({ status: 403, body: "forbidden\n" });
    // No body says why; the metrics do.
    const text = await metricsText(gate);
    for (const reason of ["unsigned", "bad_signature", "stale", "replayed", "wrong_node"]) {
      expect(metricValue(text, `edgelb_gate_rejected_total{reason="${reason}"}`)).toBeGreaterThanOrEqual(1);
    }
    expect(metricValue(text, `edgelb_gate_forwarded_total{kind="http"}`)).toBeGreaterThanOrEqual(2);
  });

  it("refuses duplicate signature headers, a second Host and absolute-form targets", async () => {
    const sig = await signature({ node: nodeName(A), nodePort: port });
    expect((await send(gate, { headers: ["Host", "app.example.com", SIGNATURE_HEADER, sig, SIGNATURE_HEADER, sig] })).status).toBe(403);
    const two = await raw(gate, `GET / HTTP/1.1\r\nHost: app.example.com\r\nHost: evil.example.com\r\n${SIGNATURE_HEADER}: ${await signature({ node: nodeName(A), nodePort: port })}\r\nConnection: close\r\n\r\n`);
    expect(two.text).toMatch(/^HTTP\/1\.1 403 /);
    const abs = await signature({ node: nodeName(A), nodePort: port, target: "http://app.example.com/" });
    const absolute = await raw(gate, `GET http://app.example.com/ HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${abs}\r\nConnection: close\r\n\r\n`);
    expect(absolute.text).toMatch(/^HTTP\/1\.1 403 /);
  });

  it("refuses a huge unsigned upload before reading its body, and closes the connection", async () => {
    // The client announces 1 GB and sends only the head: the 403 comes without waiting for a byte of it.
    const res = await raw(gate, "POST /upload HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 1000000000\r\n\r\nxxxx");
    expect(res.text).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(res.text).toMatch(/\r\n\r\nforbidden\n$/);
  });

  it("refuses Content-Length with Transfer-Encoding (request smuggling) even when signed", async () => {
    const sig = await signature({ node: nodeName(A), nodePort: port, method: "POST" });
    const res = await raw(
      gate,
      `POST / HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${sig}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: app.example.com\r\n\r\n`,
    );
    expect(res.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(res.text).not.toContain("gate-a");
  });

  it("closes a connection whose head trickles in (slowloris)", async () => {
    const slow = await gateFor(A, { headersTimeoutMs: 300 }, KeyRing.of({ k1: SECRET_1 }));
    try {
      let timer: ReturnType<typeof setInterval> | undefined;
      const res = await raw(slow, "GET / HTTP/1.1\r\nHost: app.example.com\r\n", {
        keepWriting: (socket) => {
          timer = setInterval(() => socket.writable && socket.write("X-Slow: 1\r\n"), 50);
          socket.on("close", () => clearInterval(timer));
        },
      });
      expect(res.text).toMatch(/^HTTP\/1\.1 408 /);
      expect(res.closedAfterMs).toBeLessThan(5_000);
    } finally {
      await slow.close();
    }
  });

  it("relays a WebSocket both ways after checking the upgrade's signature", async () => {
    const sig = await signature({ node: nodeName(A), nodePort: port, target: "/ws" });
    const ws = new WebSocket(`ws://${A}:${gate.port}/ws`, { headers: { host: "app.example.com", [SIGNATURE_HEADER]: sig } });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const got = new Promise<string>((resolve) => ws.once("message", (d) => resolve(d.toString())));
    ws.send("ping through the gate");
    expect(await got).toBe("ping through the gate");
    ws.close();
    // Unsigned upgrade: 403.
    const bare = new WebSocket(`ws://${A}:${gate.port}/ws`, { headers: { host: "app.example.com" } });
    const status = await new Promise<number>((resolve) => bare.once("unexpected-response", (_req, res) => resolve(res.statusCode!)));
    expect(status).toBe(403);
    expect(metricValue(await metricsText(gate), `edgelb_gate_forwarded_total{kind="websocket"}`)).toBeGreaterThanOrEqual(1);
  });

  it("keeps connections to the NodePort alive across requests", async () => {
    let connections = 0;
    const app = http.createServer((_req, res) => res.end("ok"));
    app.on("connection", () => connections++);
    await new Promise<void>((r) => app.listen(0, "127.23.1.13", r));
    const appPort = (app.address() as AddressInfo).port;
    const g = await gateFor("127.23.1.13", {}, KeyRing.of({ k1: SECRET_1 }));
    try {
      for (let i = 0; i < 10; i++) expect((await signedRequest(g, { node: nodeName("127.23.1.13"), nodePort: appPort })).status).toBe(200);
      expect(connections).toBe(1);
    } finally {
      await g.close();
      await new Promise((r) => app.close(r));
    }
  });

  it("streams both ways: the NodePort's echo of a chunk arrives before the request body has ended", async () => {
    const app = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      req.on("data", (d: Buffer) => res.write(d));
      req.on("end", () => res.end("end"));
    });
    await new Promise<void>((r) => app.listen(0, "127.23.1.15", r));
    const appPort = (app.address() as AddressInfo).port;
    const g = await gateFor("127.23.1.15", {}, KeyRing.of({ k1: SECRET_1 }));
    try {
      const sig = await signature({ node: nodeName("127.23.1.15"), nodePort: appPort, method: "POST", target: "/duplex" });
      const got = await new Promise<string>((resolve, reject) => {
        const req = http.request({ host: "127.23.1.15", port: g.port, method: "POST", path: "/duplex", headers: { host: "app.example.com", [SIGNATURE_HEADER]: sig, "transfer-encoding": "chunked" }, agent: false }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => {
            body += d;
            // Only once "one" came back does the client send the rest: a gate that buffered would never answer.
            if (body === "one") req.end("two");
          });
          res.on("end", () => resolve(body));
        });
        req.on("error", reject);
        req.write("one");
      });
      expect(got).toBe("onetwoend");
    } finally {
      await g.close();
      await new Promise((r) => app.close(r));
    }
  });

  it("connects to 127.0.0.1:<NodePort> in localhost mode", async () => {
    const app = http.createServer((req, res) => res.end(`local ${req.headers.host}`));
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
    const appPort = (app.address() as AddressInfo).port;
    const g = await gateFor("127.23.1.14", { connect: "localhost" }, KeyRing.of({ k1: SECRET_1 }));
    try {
      expect(await signedRequest(g, { node: nodeName("127.23.1.14"), nodePort: appPort })).toMatchObject({ status: 200, body: "local app.example.com" });
    } finally {
      await g.close();
      await new Promise((r) => app.close(r));
    }
  });

  it("observes the latency of forwarded requests only (edgelb_gate_request_duration_seconds)", async () => {
    const g = await gateFor("127.62.1.21", {}, KeyRing.of({ k1: SECRET_1 }));
    const app = http.createServer((_req, res) => res.end("ok"));
    await new Promise<void>((r) => app.listen(0, "127.62.1.21", r));
    try {
      const appPort = (app.address() as AddressInfo).port;
      expect((await send(g, { headers: ["Host", "app.example.com"] })).status).toBe(403);
      let text = await metricsText(g);
      expect(metricValue(text, "edgelb_gate_request_duration_seconds_count")).toBe(0);
      expect((await signedRequest(g, { node: nodeName("127.62.1.21"), nodePort: appPort })).status).toBe(200);
      text = await metricsText(g);
      expect(metricValue(text, "edgelb_gate_request_duration_seconds_count")).toBe(1);
      expect(metricValue(text, "edgelb_gate_request_duration_seconds_sum")).toBeGreaterThan(0);
    } finally {
      await g.close();
      await new Promise((r) => app.close(r));
    }
  });

  it("answers 502 without detail when the NodePort refuses, and counts it", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, A, r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const res = await signedRequest(gate, { node: nodeName(A), nodePort: deadPort });
    expect(res).toMatchObject({ status: 502, body: "bad gateway\n" });
    // Marked as the gate's own connect failure: the edge retries it on another node like a refused connection.
    expect(res.headers["x-edgelb-gate"]).toBe("upstream-unreachable");
    expect(metricValue(await metricsText(gate), `edgelb_gate_upstream_errors_total{kind="connect"}`)).toBeGreaterThanOrEqual(1);
    expect(gate.lines.some((l) => l.event === "gate.upstream_failed" && l.kind === "connect")).toBe(true);
  });

  it("an app's own 502 carries no gate marker, even when the app sends one (x-edgelb-gate is never forgeable)", async () => {
    // The app answers 502 and tries to pass it off as the gate's "nothing was sent" (which the edge would retry for any method).
    const app = http.createServer((req, res) => {
      req.resume();
      res.writeHead(502, { "x-edgelb-gate": "upstream-unreachable", "content-type": "text/plain" }).end("app says 502\n");
    });
    await new Promise<void>((r) => app.listen(0, A, r));
    try {
      const appPort = (app.address() as AddressInfo).port;
      const res = await signedRequest(gate, { node: nodeName(A), nodePort: appPort, method: "POST", body: "x", extraHeaders: ["Content-Length", "1"] });
      expect(res).toMatchObject({ status: 502, body: "app says 502\n" });
      expect(res.headers["x-edgelb-gate"]).toBeUndefined();
    } finally {
      await new Promise((r) => app.close(r));
    }
  });

  it("refuses a NodePort outside the allowed range (kubelet, sshd, ...)", async () => {
    const g = await gateFor(A, { nodePorts: { min: 30000, max: 32767 } }, KeyRing.of({ k1: SECRET_1 }));
    try {
      expect((await signedRequest(g, { node: nodeName(A), nodePort: 10250 })).status).toBe(403);
      expect(metricValue(await metricsText(g), `edgelb_gate_rejected_total{reason="port_not_allowed"}`)).toBe(1);
    } finally {
      await g.close();
    }
  });
});

// Issue 15: the signature binds the destination Node's name. Two nodes on 127.62.1.x, each with its gate.
describe("a request signed for one node", () => {
  it("replayed at another node's gate: bare 403 (reason wrong_node), and still good at its own node's gate", async () => {
    const n1 = await SimNode.start({ name: "replay-1", address: "127.62.1.11", healthzPort: 0 });
    const n2 = await SimNode.start({ name: "replay-2", address: "127.62.1.12", healthzPort: 0 });
    const appPort = await n1.servePort(0);
    await n2.servePort(appPort);
    const g1 = await gateFor(n1.address, { nodeName: "node-1" }, KeyRing.of({ k1: SECRET_1 }));
    const g2 = await gateFor(n2.address, { nodeName: "node-2", listen: `${n2.address}:${g1.port}` }, KeyRing.of({ k1: SECRET_1 }));
    try {
      // What the edge sent to node-2, captured and replayed at node-1's gate.
      const sig = await signature({ node: "node-2", nodePort: appPort, target: "/transfer" });
      const head = { path: "/transfer", headers: ["Host", "app.example.com", SIGNATURE_HEADER, sig] };
      const replayed = await send(g1, head);
      expect(replayed).toMatchObject({ status: 403, body: "forbidden\n" });
      expect(replayed.headers["x-edgelb-gate"]).toBe("refused");
      expect(metricValue(await metricsText(g1), `edgelb_gate_rejected_total{reason="wrong_node"}`)).toBe(1);
      // The signature is genuine: node-2's gate forwards it to node-2.
      const own = await send(g2, head);
      expect(own.status).toBe(200);
      expect(echo(own.body).node).toBe("replay-2");
    } finally {
      await g1.close();
      await g2.close();
      await n1.stop();
      await n2.stop();
    }
  });
});

describe("the gate's keys", () => {
  it("accepts current and previous key during a rotation, reloaded from the Secret's directory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgelb-gate-keys-"));
    writeFileSync(join(dir, "k1"), `${SECRET_1}\n`);
    const g = await gateFor(A, { keysDir: dir, keysReloadMs: 50 });
    try {
      const health = await fetch(`${g.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ keyLoaded: true });
      expect((await signedRequest(g, { node: nodeName(A), nodePort: port })).status).toBe(200);
      // Step 1: the new key joins the Secret; both are accepted.
      writeFileSync(join(dir, "k2"), SECRET_2);
      await until("k2 loaded", () => g.keys.ids().includes("k2"));
      expect((await signedRequest(g, { node: nodeName(A), nodePort: port })).status).toBe(200);
      expect((await signedRequest(g, { node: nodeName(A), nodePort: port, keyId: "k2", secret: SECRET_2 })).status).toBe(200);
      // Step 3: the old key leaves; only the new one passes.
      unlinkSync(join(dir, "k1"));
      await until("k1 dropped", () => !g.keys.ids().includes("k1"));
      expect((await signedRequest(g, { node: nodeName(A), nodePort: port })).status).toBe(403);
      expect((await signedRequest(g, { node: nodeName(A), nodePort: port, keyId: "k2", secret: SECRET_2 })).status).toBe(200);
      expect(g.lines.some((l) => l.event === "gate.keys_loaded" && JSON.stringify(l.added) === '["k2"]')).toBe(true);
      expect(JSON.stringify(g.lines)).not.toContain(SECRET_2);
      // No key at all: /healthz says so and every request is refused.
      unlinkSync(join(dir, "k2"));
      await until("no key", () => g.keys.size === 0);
      const none = await fetch(`${g.url}/healthz`);
      expect(none.status).toBe(503);
      expect(await none.json()).toMatchObject({ keyLoaded: false });
    } finally {
      await g.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("skips a key file too short to be a secret, and says so without quoting it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgelb-gate-keys-"));
    writeFileSync(join(dir, "weak"), "short-secret");
    const g = await gateFor(A, { keysDir: dir, keysReloadMs: 60_000 });
    try {
      expect(g.keys.size).toBe(0);
      const warn = g.lines.find((l) => l.event === "gate.keys_skipped");
      expect(JSON.stringify(warn)).toContain("weak");
      expect(JSON.stringify(g.lines)).not.toContain("short-secret");
    } finally {
      await g.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("edgelb-node-gate command line", () => {
  it("--help exits 0 and lists the settings; --connect node without a node address, or no --node-name, exits 2", async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(["node", "edgelb-node-gate", "--help"], {}, async () => {})).toBe(0);
      expect(out.join("")).toMatch(/--connect <mode>[\s\S]*--node-name <name>[\s\S]*--keys-dir[\s\S]*--node-ports <range>/);
      // Every flag --help lists is documented in docs/gate.md's flag table.
      const doc = readFileSync(new URL("../../docs/gate.md", import.meta.url), "utf8");
      const flags = [...out.join("").matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]!).filter((f) => f !== "--help");
      expect(flags.length).toBeGreaterThan(15);
      expect(flags.filter((f) => !doc.includes(`| \`${f}\` |`))).toEqual([]);
      out.length = 0;
      expect(await main(["node", "edgelb-node-gate"], {}, async () => {})).toBe(2);
      expect(out.join("")).toContain("--connect node needs --node-ip");
      let ran: GateConfig | undefined;
      // No node name: the gate cannot tell requests for this node from requests for another one.
      out.length = 0;
      expect(await main(["node", "edgelb-node-gate", "--connect", "localhost"], {}, async (c) => void (ran = c))).toBe(2);
      expect(out.join("")).toContain("--node-name is required (or NODE_NAME, from the downward API: spec.nodeName)");
      expect(ran).toBeUndefined();
      out.length = 0;
      expect(await main(["node", "edgelb-node-gate", "--connect", "localhost", "--node-name", "10.0.0.7:80"], {}, async (c) => void (ran = c))).toBe(2);
      expect(out.join("")).toContain("not a Kubernetes Node name");
      // No cluster: the gate cannot tell requests for its cluster from another cluster's (one shared key).
      out.length = 0;
      expect(await main(["node", "edgelb-node-gate", "--connect", "localhost", "--node-name", "worker-1"], {}, async (c) => void (ran = c))).toBe(2);
      expect(out.join("")).toContain("--cluster is required (or EDGELB_CLUSTER");
      expect(ran).toBeUndefined();
      expect(await main(["node", "edgelb-node-gate", "--connect", "localhost", "--node-name", "worker-1", "--cluster", "Home_1"], {}, async (c) => void (ran = c))).toBe(2);
      expect(out.join("")).toContain("not a cluster name");
      expect(await main(["node", "edgelb-node-gate", "--connect", "localhost", "--node-name", "worker-1", "--cluster", "home"], {}, async (c) => void (ran = c))).toBe(0);
      expect(ran).toMatchObject({ nodeName: "worker-1", clusterName: "home" });
      // From the downward API's environment variable (commander reads option variables from process.env).
      process.env.NODE_NAME = "worker-2";
      process.env.EDGELB_CLUSTER = "lab";
      try {
        expect(await main(["node", "edgelb-node-gate", "--connect", "localhost"], {}, async (c) => void (ran = c))).toBe(0);
      } finally {
        delete process.env.NODE_NAME;
        delete process.env.EDGELB_CLUSTER;
      }
      expect(ran).toMatchObject({ nodeName: "worker-2", clusterName: "lab" });
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
  });
});
