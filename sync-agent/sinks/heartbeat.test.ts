// The heartbeat's timing and its documented cost, without a network: a fake
// sink counts calls; time is a variable.
import { readFileSync } from "node:fs";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import { DEFAULT_HEARTBEAT_MS, DEFAULT_KV_HEARTBEAT_MS, Heartbeat } from "./heartbeat.ts";
import { SinkError, type Sink } from "./types.ts";

const snapshot = { cluster: "home", generation: 7 } as Snapshot;

function setup(o: { fail?: SinkError } = {}) {
  let now = 1_000_000;
  let pushedAt: number | undefined = now;
  const calls: number[] = [];
  const refused: string[] = [];
  const sink = {
    description: "fake",
    read: async () => ({ snapshot: null, generation: 0 }),
    write: async () => ({ bytes: 0, unchanged: false }),
    remove: async () => {},
    heartbeat: async (s: Snapshot) => {
      calls.push(s.generation);
      if (o.fail) throw o.fail;
      return { kvWrite: false };
    },
  } satisfies Sink;
  const hb = new Heartbeat({ sink, intervalMs: 60_000, last: () => ({ snapshot, pushedAt }), shouldWrite: () => true, onRefused: (r) => refused.push(r), log: pino({ level: "silent" }), now: () => now });
  return { hb, calls, refused, advance: (ms: number) => (now += ms), push: () => (pushedAt = now) };
}

describe("heartbeat timing", () => {
  it("goes out one interval after the last push or heartbeat, for the pushed generation; a push resets it", async () => {
    const t = setup();
    t.advance(59_000);
    expect(await t.hb.tick()).toBe(false);
    t.advance(1_000);
    expect(await t.hb.tick()).toBe(true);
    expect(await t.hb.tick()).toBe(false);
    t.advance(30_000);
    t.push();
    t.advance(59_000);
    expect(await t.hb.tick()).toBe(false);
    t.advance(1_000);
    expect(await t.hb.tick()).toBe(true);
    expect(t.calls).toEqual([7, 7]);
  });

  it("a 404 or 409 from the edge asks for a push; other failures only wait for the next interval", async () => {
    const t = setup({ fail: new SinkError("409", "conflict", { status: 409 }) });
    t.advance(60_000);
    expect(await t.hb.tick()).toBe(false);
    expect(t.refused).toHaveLength(1);
    expect(await t.hb.tick()).toBe(false);
    expect(t.calls).toHaveLength(1);
  });

  it("the per-day figures in docs/agent.md are the defaults' (86,400 s / interval)", () => {
    const doc = readFileSync(new URL("../../docs/agent.md", import.meta.url), "utf8");
    const fmt = (n: number) => n.toLocaleString("en-US");
    expect(doc).toContain(`${fmt(86_400_000 / DEFAULT_KV_HEARTBEAT_MS)} a day per`);
    expect(doc).toContain(`${fmt(86_400_000 / DEFAULT_HEARTBEAT_MS)} small requests a day`);
  });
});
