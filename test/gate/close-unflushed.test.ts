// rv-gate 1 (s10): a connection the gate closes after reading everything (the client's FIN, or
// Connection: close) while part of its last answer still waits in Node's write queue must not be held
// forever by a client that never reads. Unsigned: pipelined GET /healthz, then the FIN.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimNode } from "../../lab/cluster/sim-node.ts";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { gateFor, SECRET_1, until, type TestGate } from "./harness.ts";

const A = "127.143.1.41";
let node: SimNode;
let gate: TestGate;
beforeAll(async () => {
  node = await SimNode.start({ name: "pin-a", address: A, healthzPort: 0 });
  gate = await gateFor(A, { headersTimeoutMs: 1_000, keepAliveTimeoutMs: 1_000 }, KeyRing.of({ k1: SECRET_1 }));
});
afterAll(async () => {
  await gate?.close();
  await node?.stop();
});

/** The gate's end of the connection, as `ss` sees it: held by this process? its receive and send queues. */
function gateSide(gatePort: number, localPort: number): { held: boolean; recvQ: number; sendQ: number } {
  const out = execFileSync("ss", ["-tnpH", "state", "all", `( sport = :${gatePort} and dport = :${localPort} )`], { encoding: "utf8" });
  const line = out.split("\n").find((l) => l.trim() !== "") ?? "";
  const f = line.trim().split(/\s+/);
  return { held: line.includes(`pid=${process.pid},`), recvQ: Number(f[1] ?? 0), sendQ: Number(f[2] ?? 0) };
}
/** Bytes our side has not yet handed over (the client's kernel send queue). */
function clientSendQ(gatePort: number, localPort: number): number {
  const out = execFileSync("ss", ["-tnH", "state", "all", `( sport = :${localPort} and dport = :${gatePort} )`], { encoding: "utf8" });
  return Number((out.split("\n").find((l) => l.trim() !== "") ?? "").trim().split(/\s+/)[2] ?? 0);
}
const HEALTHZ = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

describe("answers the gate closes after the client's FIN", () => {
  it("a client that pipelines GET /healthz, sends its FIN and never reads is let go within seconds, though an answer still waits in Node's queue", async () => {
    const url = new URL(gate.url);
    const gatePort = Number(url.port);
    const socket = net.connect({ host: url.hostname, port: gatePort, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    socket.on("error", () => undefined);
    socket.pause();
    const localPort = socket.localPort!;
    try {
      // Pipelined GET /healthz until the gate's kernel send queue is full and stops growing. Each batch is read
      // whole by the gate before the next; near the kernel's limit the batches are small (50 answers, ~7 KB), so
      // what waits in Node's queue when the FIN is read stays under its 16 KiB high-water mark.
      const wmemMax = Number(readFileSync("/proc/sys/net/ipv4/tcp_wmem", "utf8").trim().split(/\s+/)[2]);
      let last = -1;
      for (let i = 0; i < 5_000; i++) {
        const { sendQ } = gateSide(gatePort, localPort);
        if (sendQ === last && sendQ > 0) break;
        last = sendQ;
        const batch = Math.max(50, Math.min(4_000, Math.floor((wmemMax - 256 * 1024 - sendQ) / 143 / 2)));
        socket.write(HEALTHZ.repeat(batch));
        for (let t = 0; t < 100; t++) {
          await new Promise((r) => setTimeout(r, 10));
          if (gateSide(gatePort, localPort).recvQ === 0 && clientSendQ(gatePort, localPort) === 0) break;
        }
      }
      socket.end();
      // The gate's deadline for taking the last answer is the head deadline, 1 s here.
      await until("the gate to let go of the connection", () => !gateSide(gatePort, localPort).held, 6_000);
    } finally {
      socket.destroy();
    }
  }, 120_000);
});
