import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorld, type World } from "./harness.ts";
let w: World;
beforeAll(async () => { w = await startWorld({ addressBase: "127.76.18", nodes: 1, sink: "kv-api", noAgent: true }); });
afterAll(async () => { await w?.stop(); });
describe("rv-ops: kv-api heartbeats and the daily write budget", () => {
  it("never writes KV more often than --daily-write-budget allows", async () => {
    await w.startAgent({ dailyWriteBudget: 2, heartbeatMs: 300 });
    await w.waitForSnapshot(() => true, "first push");
    await new Promise((r) => setTimeout(r, 3000));
    const puts = w.cf!.writes.length;
    expect(puts, `KV writes in 3 s with a daily budget of 2: ${puts}`).toBeLessThanOrEqual(2);
  });
});
