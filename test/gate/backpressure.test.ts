// rv-proxy 1 (session 6): the raw forwarder read pipelined requests whatever the client read of the
// answers, so a client pipelining unsigned `GET /healthz` and never reading made the gate buffer ~6x what
// it sent, without bound (one connection OOM-killed a gate). The gate now reads no next request while an
// answer is unflushed. Addresses: 127.101.3.x (gt15's range).
import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { gateFor, SECRET_1, type TestGate } from "./harness.ts";

const A = "127.101.3.11";
let gate: TestGate;
beforeAll(async () => {
  gate = await gateFor(A, {}, KeyRing.of({ k1: SECRET_1 }));
});
afterAll(async () => {
  await gate?.close();
});

it("a client that pipelines GET /healthz and never reads is not buffered without bound (unauthenticated memory)", async () => {
  const url = new URL(gate.url);
  const one = "GET /healthz HTTP/1.1\r\n\r\n";
  const block = Buffer.from(one.repeat(Math.floor(65536 / one.length)));
  const s = net.connect({ port: Number(url.port), host: url.hostname });
  s.pause(); // never reads an answer
  s.on("error", () => {});
  await new Promise<void>((r) => s.once("connect", () => r()));
  let accepted = 0;
  // The gate must stop reading once its answers back up: the client's writes then stall.
  while (accepted < 16 * 1024 * 1024 && !s.destroyed) {
    if (!s.write(block)) {
      const drained = await Promise.race([new Promise((r) => s.once("drain", () => r(true))), new Promise((r) => setTimeout(() => r(false), 1_000))]);
      if (!drained) break;
    }
    accepted += block.length;
  }
  s.destroy();
  expect(accepted).toBeLessThan(16 * 1024 * 1024);
}, 60_000);

it("a client that pipelines 3,000 GET /healthz in one write and reads gets every answer", async () => {
  const url = new URL(gate.url);
  const n = 3000;
  const text = await new Promise<string>((resolve) => {
    const s = net.connect({ port: Number(url.port), host: url.hostname }, () => s.write("GET /healthz HTTP/1.1\r\n\r\n".repeat(n - 1) + "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"));
    let t = "";
    s.setEncoding("latin1");
    s.on("data", (d: string) => (t += d));
    s.on("error", () => {});
    s.on("close", () => resolve(t));
  });
  expect(text.split("HTTP/1.1 200 OK").length - 1).toBe(n);
}, 60_000);
