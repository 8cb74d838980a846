import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import { DEFAULT_KV_HEARTBEAT_MS, Heartbeat } from "./heartbeat.ts";
import type { Sink } from "./types.ts";
describe("rv-ops: heartbeat cadence with a real sink latency", () => {
  it("sends one heartbeat per interval (10 min), not one per 5 checks", async () => {
    let now = 0;
    const sent: number[] = [];
    const sink = {
      description: "fake",
      read: async () => ({ snapshot: null, generation: 0 }),
      write: async () => ({ bytes: 0, unchanged: false }),
      remove: async () => {},
      heartbeat: async () => { sent.push(now); now += 300; return { kvWrite: true }; }, // a 300 ms PUT
    } satisfies Sink;
    const snapshot = { cluster: "home", generation: 1 } as Snapshot;
    const hb = new Heartbeat({ sink, intervalMs: DEFAULT_KV_HEARTBEAT_MS, last: () => ({ snapshot, pushedAt: 0 }), shouldWrite: () => true, onRefused: () => {}, log: pino({ level: "silent" }), now: () => now });
    const check = DEFAULT_KV_HEARTBEAT_MS / 4; // what start() uses
    for (let t = check; t <= 3_600_000; t += check) { now = Math.max(now, t); await hb.tick(); }
    const gaps = sent.slice(1).map((at, i) => Math.round((at - sent[i]!) / 1000));
    expect(gaps.every((g) => g <= 600 + 1), `gaps between heartbeats (s): ${gaps.join(", ")}`).toBe(true);
  });
});
