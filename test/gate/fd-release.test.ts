// Finding 1 (review of issue 15): a peer that never sends FIN must not pin a gate socket.
// The gate used to half-close (socket.end) refused upgrades and timed-out heads; a client with
// allowHalfOpen then kept the fd forever. Checked with `ss`: does this process still hold the connection?
import { execFileSync } from "node:child_process";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimNode } from "../../lab/cluster/sim-node.ts";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { gateFor, SECRET_1, until, type TestGate } from "./harness.ts";

const A = "127.23.1.31";
let node: SimNode;
let gate: TestGate;
let slowHead: TestGate;

beforeAll(async () => {
  node = await SimNode.start({ name: "fd-a", address: A, healthzPort: 0 });
  gate = await gateFor(A, {}, KeyRing.of({ k1: SECRET_1 }));
  slowHead = await gateFor(A, { headersTimeoutMs: 1_000 }, KeyRing.of({ k1: SECRET_1 }));
});
afterAll(async () => {
  await gate?.close();
  await slowHead?.close();
  await node?.stop();
});

/** Whether this process (the gate runs in it) still has the gate's end of the connection open. */
function gateHoldsFd(gatePort: number, localPort: number): boolean {
  const out = execFileSync("ss", ["-tnpH", "state", "all", `( sport = :${gatePort} and dport = :${localPort} )`], { encoding: "utf8" });
  return out.split("\n").some((l) => l.includes(`pid=${process.pid},`));
}

/** A client that never half-closes: connects, writes bytes, keeps reading. */
async function hold(g: TestGate, bytes: string) {
  const url = new URL(g.url);
  const socket = net.connect({ host: url.hostname, port: Number(url.port), allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  let text = "";
  let ended = false;
  socket.setEncoding("utf8");
  socket.on("data", (d: string) => (text += d));
  socket.on("end", () => (ended = true));
  socket.on("error", () => undefined);
  if (bytes) socket.write(bytes);
  return { socket, gatePort: Number(url.port), localPort: socket.localPort!, text: () => text, ended: () => ended };
}

describe("the gate frees connections of peers that never close their side", () => {
  it("unsigned WebSocket upgrade: 403, then the gate frees the connection", async () => {
    const h = await hold(gate, "GET /ws HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    try {
      await until("the 403", () => h.text().startsWith("HTTP/1.1 403 "));
      expect(h.text()).toContain("forbidden");
      // Before the fix the gate held it forever; now it lets go within seconds.
      await until("the gate to free the socket", () => !gateHoldsFd(h.gatePort, h.localPort), 4_000);
      expect(gateHoldsFd(h.gatePort, h.localPort)).toBe(false);
    } finally {
      h.socket.destroy();
    }
  });

  it("a connection that sends nothing is freed after the head timeout", async () => {
    const h = await hold(slowHead, "");
    try {
      expect(gateHoldsFd(h.gatePort, h.localPort)).toBe(true);
      await until("the gate to free the silent socket", () => !gateHoldsFd(h.gatePort, h.localPort), 8_000);
      expect(gateHoldsFd(h.gatePort, h.localPort)).toBe(false);
    } finally {
      h.socket.destroy();
    }
  });
});
