// The gate's edge path (sync-agent/gate/edge-socket): which one is in use, that the wrap path builds no
// net.Socket per connection, and the connection behaviours the rest of the suite does not pin down
// (a client's FIN after its request, --max-connections). Like every gate test, these run on both paths
// (EDGELB_TEST_GATE_EDGE=net: npm run test:gate-net). Addresses: 127.143.1.x (gt10's range).
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimNode } from "../../lab/cluster/sim-node.ts";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { wrapAvailable } from "../../sync-agent/gate/edge-socket/index.ts";
import { edgeFallbackReason, edgePath } from "../../sync-agent/gate/main.ts";
import { gateFor, metricsText, nodeName, SECRET_1, send, signature, signedRequest, until, type TestGate } from "./harness.ts";
import { SIGNATURE_HEADER } from "../../worker/snapshot/signing.ts";

const A = "127.143.1.11";
const keys = () => KeyRing.of({ k1: SECRET_1 });
let node: SimNode;
let nodePort: number;
let gate: TestGate;

beforeAll(async () => {
  node = await SimNode.start({ name: "edge-a", address: A, healthzPort: 0 });
  nodePort = await node.servePort(0);
  gate = await gateFor(A, {}, keys());
});
afterAll(async () => {
  await gate?.close();
  await node?.stop();
});

const edgeOf = (g: TestGate) => (g.lines.find((l) => l.event === "gate.started") as { edge?: string } | undefined)?.edge;

/** A raw client: writes `bytes`, half-closes when asked, collects the answer until the gate closes. */
function client(g: TestGate, bytes: string, opts: { halfClose?: boolean } = {}): Promise<string> {
  const url = new URL(g.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port), allowHalfOpen: true }, () => {
      socket.write(bytes);
      if (opts.halfClose) socket.end();
    });
    let text = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => (text += d));
    socket.on("error", reject);
    socket.on("close", () => resolve(text));
  });
}

async function signedHead(target: string): Promise<string> {
  const sig = await signature({ node: nodeName(A), nodePort, target });
  return `GET ${target} HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${sig}\r\n\r\n`;
}

describe("the gate's edge path", () => {
  it("this Node (the image's Node 20) has the wrap path; the metrics (edgelb_gate_info) and the startup log say which path is in use, the internet-facing /healthz does not, and --edge net forces net.Socket", async () => {
    expect(wrapAvailable()).toBe(true);
    const wrap = await gateFor(A, { edge: "wrap" }, keys());
    const viaNet = await gateFor(A, { edge: "net" }, keys());
    try {
      for (const [g, path] of [
        [wrap, "wrap"],
        [viaNet, "net"],
      ] as const) {
        const health = await send(g, { path: "/healthz", headers: ["Host", "gate"] });
        expect(health.status).toBe(200);
        expect(JSON.parse(health.body)).toEqual({ status: "ok", keyLoaded: true });
        expect(edgeOf(g)).toBe(path);
        expect(await metricsText(g)).toContain(`edgelb_gate_info{edge="${path}"} 1`);
        // Both serve a signed request.
        expect((await signedRequest(g, { node: nodeName(A), nodePort, target: "/status/200" })).status).toBe(200);
      }
    } finally {
      await wrap.close();
      await viaNet.close();
    }
  });

  it("builds no net.Socket for a connection from the edge on the wrap path (node:net's net.server.socket channel), one per connection on net", async () => {
    const wrap = await gateFor(A, { edge: "wrap" }, keys());
    const viaNet = await gateFor(A, { edge: "net" }, keys());
    const accepted: number[] = [];
    const seen = (message: unknown) => accepted.push((message as { socket: net.Socket }).socket.localPort ?? 0);
    subscribe("net.server.socket", seen);
    try {
      for (const g of [wrap, viaNet]) for (let i = 0; i < 5; i++) expect((await signedRequest(g, { node: nodeName(A), nodePort, target: "/status/200" })).status).toBe(200);
      expect(accepted.filter((p) => p === wrap.port)).toHaveLength(0);
      expect(accepted.filter((p) => p === viaNet.port)).toHaveLength(5);
    } finally {
      unsubscribe("net.server.socket", seen);
      await wrap.close();
      await viaNet.close();
    }
  });

  it("a client that sends its FIN right after its request still gets the whole answer, then the gate closes", async () => {
    const text = await client(gate, await signedHead("/stream?bytes=100000"), { halfClose: true });
    expect(text.startsWith("HTTP/1.1 200 ")).toBe(true);
    const body = text.slice(text.indexOf("\r\n\r\n") + 4);
    expect(body).toBe("a".repeat(100_000));
    // An unsigned request half-closed the same way gets its 403 whole.
    expect(await client(gate, "GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n", { halfClose: true })).toMatch(/^HTTP\/1\.1 403 [^]*forbidden\n$/);
  });

  it("--max-connections: a connection beyond it is closed at once, and one is accepted again once another closes", async () => {
    const capped = await gateFor(A, { maxConnections: 2 }, keys());
    const url = new URL(capped.url);
    const open = (): Promise<{ socket: net.Socket; closed: () => boolean }> =>
      new Promise((resolve, reject) => {
        const socket = net.connect(Number(url.port), url.hostname, () => resolve({ socket, closed: () => closed }));
        let closed = false;
        socket.on("error", () => undefined);
        socket.on("close", () => (closed = true));
        socket.once("error", reject);
      });
    try {
      const held = [await open(), await open()];
      const third = await open();
      await until("the third connection to be closed", () => third.closed(), 5_000);
      expect(held.every((h) => !h.closed())).toBe(true);
      held[0]!.socket.destroy();
      // Once the gate has let go of it, a new connection is served.
      await until("a request on a new connection to pass", async () => (await signedRequest(capped, { node: nodeName(A), nodePort, target: "/status/200" }).catch(() => undefined))?.status === 200, 5_000);
      held[1]!.socket.destroy();
    } finally {
      await capped.close();
    }
  });
});

describe("a failed accept (rv-gate 2)", () => {
  it("is one connection's failure, not the listener's: logged, and the gate goes on serving", async () => {
    const g = await gateFor(A, {}, keys());
    try {
      // The gate's listening server, found by its port; its handle reports an accept error as libuv would (ENOBUFS).
      const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
      const server = handles.find((h): h is net.Server => h instanceof net.Server && (h.address() as net.AddressInfo | null)?.port === g.port)!;
      const handle = (server as unknown as { _handle: { onconnection(err: number, client: undefined): void } })._handle;
      handle.onconnection(-105, undefined);
      await until("the warning", () => g.lines.some((l) => l.event === "gate.accept_failed"));
      expect((await signedRequest(g, { node: nodeName(A), nodePort, target: "/status/200" })).status).toBe(200);
    } finally {
      await g.close();
    }
  });
});

describe("choosing the edge path (--edge)", () => {
  it("auto takes wrap where the bindings are and net where they are not, and only that fallback gets a startup warning; wrap without them refuses to start", async () => {
    expect(edgePath("auto", true)).toBe("wrap");
    expect(edgePath("auto", false)).toBe("net");
    expect(edgePath("net", true)).toBe("net");
    expect(() => edgePath("wrap", false)).toThrow(/--edge wrap: .*bindings/);
    expect(edgeFallbackReason("auto", "net")).toMatch(/node:net sockets/);
    expect(edgeFallbackReason("auto", "wrap")).toBeUndefined();
    expect(edgeFallbackReason("net", "net")).toBeUndefined();
    // This Node has the bindings: auto starts on wrap with no warning.
    const g = await gateFor(A, { edge: "auto" }, keys());
    try {
      expect(edgeOf(g)).toBe(wrapAvailable() ? "wrap" : "net");
      expect(g.lines.some((l) => l.event === "gate.edge_fallback")).toBe(!wrapAvailable());
    } finally {
      await g.close();
    }
  });
});
