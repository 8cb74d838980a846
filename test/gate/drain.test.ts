// Finding 4 (review of issue 15): a rollout (SIGTERM → close) must not cut forwarded requests in flight.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { gateFor, SECRET_1, send, nodeName, signedRequest, until } from "./harness.ts";

const A = "127.23.1.41";
let origin: http.Server;
let port: number;
let arrived = 0;

beforeAll(async () => {
  // A slow app: answers 1 s after the request arrives.
  origin = http.createServer((req, res) => {
    arrived++;
    setTimeout(() => res.end("slow answer\n"), 1_000);
  });
  await new Promise<void>((resolve) => origin.listen(0, A, resolve));
  port = (origin.address() as AddressInfo).port;
});
afterAll(async () => {
  origin.closeAllConnections();
  await new Promise((r) => origin.close(r));
});

describe("the gate on shutdown", () => {
  it("a request in flight to a slow origin (1 s) still gets its 200 when the gate is closed; new connections are refused", async () => {
    const gate = await gateFor(A, { drainMs: 8_000 }, KeyRing.of({ k1: SECRET_1 }));
    const before = arrived;
    const inFlight = signedRequest(gate, { node: nodeName(A), nodePort: port, target: "/slow" });
    await until("the request to reach the origin", () => arrived > before);
    const closing = gate.close();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body).toBe("slow answer\n");
    await closing;
    await expect(send(gate, { headers: ["Host", "app.example.com"] })).rejects.toThrow();
  });
});
