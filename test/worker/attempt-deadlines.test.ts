// Guard test by rv-proxy (s8), kept on the fetch path (pf8): every attempt of a request has its own response deadline, whatever shares a timer
// (one per request, re-armed, lazily made): a second attempt after the first timed out is bounded too,
// and a request whose every node is silent ends with 504 in about attempts × responseTimeoutMs.
// Nodes: a group of its own (simGroup).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { SimGroup } from "./global-setup.ts";
import { edgeWithService, nodesOf, setBehavior, simGroup } from "./helpers.ts";
import { TRANSPORTS } from "./transports.ts";

let group: SimGroup & { release(): Promise<void> };
beforeAll(async () => {
  group = await simGroup(3);
});
afterAll(async () => {
  await group?.release();
});
beforeEach(async () => {
  await Promise.all(group.nodes.map((n) => setBehavior(n.name, { mode: "ok" })));
});
const host = "deadlines.example.com";

describe.each(TRANSPORTS)("every attempt's response deadline (%s)", (transport) => {
  it("a GET to nodes that all accept and never answer ends with 504 after one deadline per attempt, each attempt cut at its own", async () => {
    await Promise.all(group.nodes.map((n) => setBehavior(n.name, { mode: "hang" })));
    const e = await edgeWithService(
      { hostnames: [host], nodePort: group.nodePort, policy: { responseTimeoutMs: 400, connectTimeoutMs: 400, attempts: 3, connectAttemptDelayMs: 0 } },
      nodesOf(group.nodes),
      { EDGELB_TRANSPORT: transport },
    );
    const started = Date.now();
    const res = await e.request(host);
    const ms = Date.now() - started;
    expect(res.status).toBe(504);
    // Three attempts, each cut at its own 400 ms (not one 400 ms for the request, not unbounded).
    expect(ms).toBeGreaterThanOrEqual(3 * 400 - 50);
    expect(ms).toBeLessThan(3 * 400 + 4_000);
    const retries = e.logs.filter((l) => l.event === "proxy.retry");
    expect(retries.map((l) => l.kind)).toEqual(["ResponseTimeoutError", "ResponseTimeoutError"]);
    expect(new Set(retries.map((l) => l.node)).size).toBe(2);
    expect(e.logs.find((l) => l.event === "proxy.failed")).toMatchObject({ kind: "ResponseTimeoutError" });
  });

  it("a retry after a timed-out attempt gets a whole deadline of its own: a node answering within it still serves", async () => {
    const [a, b, c] = group.nodes.map((n) => n.name) as [string, string, string];
    await setBehavior(a, { mode: "hang" });
    await setBehavior(b, { mode: "slow", delayMs: 300 });
    await setBehavior(c, { mode: "slow", delayMs: 300 });
    const e = await edgeWithService(
      { hostnames: [host], nodePort: group.nodePort, policy: { responseTimeoutMs: 2_000, connectTimeoutMs: 2_000, attempts: 3, connectAttemptDelayMs: 0 } },
      nodesOf(group.nodes),
      { EDGELB_TRANSPORT: transport },
    );
    // Whichever node comes first: a hung first attempt (2 s) leaves a deadline shared by the request's attempts
    // no room for a 300 ms answer; a deadline per attempt does, with 1.7 s to spare on a loaded machine (rv-proxy s8 4).
    for (let i = 0; i < 3; i++) {
      const res = await e.request(host);
      expect(res.status).toBe(200);
    }
    expect(e.logs.filter((l) => l.event === "proxy.retry").every((l) => l.kind === "ResponseTimeoutError" && l.node === a)).toBe(true);
  });
});
