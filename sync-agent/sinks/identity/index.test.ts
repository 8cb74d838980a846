import { describe, expect, it } from "vitest";
import { pino } from "pino";
import type { Snapshot } from "../../../worker/snapshot/schema.ts";
import { SinkError, type ReadResult, type Sink } from "../types.ts";
import { IdentitySink, ownership } from "./index.ts";

const snap = (clusterId?: string): Snapshot =>
  ({ schema: "edgelb.dev/snapshot/v1", cluster: "home", generation: 4, publishedAt: new Date(0).toISOString(), nodes: [], services: [], ...(clusterId ? { clusterId } : {}) }) as Snapshot;

function memory(stored: Snapshot | null) {
  const written: Snapshot[] = [];
  const sink: Sink = {
    description: "memory",
    read: async (): Promise<ReadResult> => ({ snapshot: stored, generation: stored?.generation ?? 0 }),
    write: async (s) => {
      written.push(s);
      stored = s;
      return { bytes: 1, unchanged: false };
    },
    remove: async () => {},
  };
  return { sink, written };
}

const guard = (inner: Sink, takeOver = false) => new IdentitySink(inner, { cluster: "home", identity: async () => "uid-a", takeOver, log: pino({ level: "silent" }) });

describe("ownership", () => {
  it("adopts unmarked snapshots, keeps its own, refuses others unless taking over", () => {
    expect(ownership(undefined, "a", false)).toBe("adopt");
    expect(ownership("a", "a", false)).toBe("ours");
    expect(ownership("b", "a", false)).toBe("refuse");
    expect(ownership("b", "a", true)).toBe("take-over");
  });
});

describe("IdentitySink", () => {
  it("stamps writes and hands the controller the stored snapshot without the identity", async () => {
    const m = memory(snap("uid-a"));
    const g = guard(m.sink);
    const read = await g.read();
    expect(read.snapshot).not.toHaveProperty("clusterId");
    await g.write(snap());
    expect(m.written[0]!.clusterId).toBe("uid-a");
  });

  it("adopts a snapshot written before snapshots carried an identity", async () => {
    const m = memory(snap());
    const g = guard(m.sink);
    expect((await g.read()).generation).toBe(4);
    await g.write(snap());
    expect(m.written).toHaveLength(1);
  });

  it("refuses to read or write over another cluster's snapshot; --take-over replaces it", async () => {
    const m = memory(snap("uid-b"));
    const g = guard(m.sink);
    await expect(g.read()).rejects.toMatchObject({ kind: "fatal" });
    await expect(g.write(snap())).rejects.toBeInstanceOf(SinkError);
    expect(m.written).toHaveLength(0);
    const t = guard(m.sink, true);
    // the other cluster's content is not ours: the controller sees nothing stored, only its generation
    expect(await t.read()).toEqual({ snapshot: null, generation: 4 });
    await t.write(snap());
    expect(m.written[0]!.clusterId).toBe("uid-a");
  });

  it("an unreadable identity is a retryable error that names the permission", async () => {
    const g = new IdentitySink(memory(null).sink, { cluster: "home", identity: async () => Promise.reject(new Error("HTTP 403")), takeOver: false, log: pino({ level: "silent" }) });
    await expect(g.read()).rejects.toMatchObject({ kind: "retryable", message: expect.stringMatching(/kube-system.*403.*get on namespaces/) });
  });
});

describe("IdentitySink in a dry run", () => {
  it("goes on without an identity it cannot read", async () => {
    const m = memory(snap("uid-b"));
    const g = new IdentitySink(m.sink, { cluster: "home", identity: async () => Promise.reject(new Error("HTTP 403")), takeOver: false, optional: true, log: pino({ level: "silent" }) });
    expect((await g.read()).generation).toBe(4);
    await g.write(snap());
    expect(m.written[0]).not.toHaveProperty("clusterId");
  });
});
