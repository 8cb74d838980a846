import { afterEach, describe, expect, it, vi } from "vitest";
import type { V1Lease } from "@kubernetes/client-node";
import { LeaderElector, LeaseConflict, type LeaseStore } from "./index.ts";

// An in-memory Lease with resourceVersion semantics; each elector gets its own
// view that can be partitioned (every call fails) or made to hang.
class MemoryLease {
  lease: V1Lease | null = null;
  rv = 0;
  writes: Array<{ by: string; at: number; holder: string }> = [];
  view(who: string) {
    const view = { partitioned: false };
    const store: LeaseStore & typeof view = Object.assign(view, {
      namespace: "edgelb",
      name: "edgelb-sync-agent",
      get: async () => {
        if (view.partitioned) throw new Error("connect ECONNREFUSED");
        return this.lease ? (JSON.parse(JSON.stringify(this.lease)) as V1Lease) : null;
      },
      create: async (l: V1Lease) => {
        if (view.partitioned) throw new Error("connect ECONNREFUSED");
        if (this.lease) throw new LeaseConflict("exists");
        return this.write(who, l);
      },
      replace: async (l: V1Lease) => {
        if (view.partitioned) throw new Error("connect ECONNREFUSED");
        if (l.metadata?.resourceVersion !== String(this.rv)) throw new LeaseConflict("stale");
        return this.write(who, l);
      },
    });
    return store;
  }
  private write(by: string, l: V1Lease): V1Lease {
    this.rv++;
    this.lease = JSON.parse(JSON.stringify({ ...l, metadata: { ...l.metadata, resourceVersion: String(this.rv) } }));
    this.writes.push({ by, at: Date.now(), holder: this.lease!.spec?.holderIdentity ?? "" });
    return JSON.parse(JSON.stringify(this.lease));
  }
}

const FAST = { leaseDurationMs: 1_000, renewDeadlineMs: 600, retryPeriodMs: 100 };

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const running: LeaderElector[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(running.splice(0).map((e) => e.stop()));
});

function elector(mem: MemoryLease, name: string, opts: { releaseOnStop?: boolean } = {}) {
  const store = mem.view(name);
  const e = new LeaderElector({ store, identity: name, timings: FAST, ...opts });
  const log: Array<{ ev: "started" | "stopped"; at: number }> = [];
  e.on("started", () => log.push({ ev: "started", at: Date.now() }));
  e.on("stopped", () => log.push({ ev: "stopped", at: Date.now() }));
  running.push(e);
  return { e, store, log };
}

describe("LeaderElector", () => {
  it("elects exactly one of three candidates and records MicroTime renewals", async () => {
    const mem = new MemoryLease();
    const all = ["a", "b", "c"].map((n) => elector(mem, n));
    all.forEach(({ e }) => e.run());
    await until(() => all.some(({ e }) => e.isLeader()));
    await new Promise((r) => setTimeout(r, 300)); // several retry periods
    expect(all.filter(({ e }) => e.isLeader())).toHaveLength(1);
    expect(String(mem.lease!.spec!.renewTime)).toMatch(/\.\d{6}Z$/);
    expect(mem.lease!.spec!.leaseTransitions).toBe(0);
  });

  it("hands over at once when the leader stops gracefully (releases the lease)", async () => {
    const mem = new MemoryLease();
    const a = elector(mem, "a");
    a.e.run();
    await until(() => a.e.isLeader());
    const b = elector(mem, "b");
    b.e.run();
    await new Promise((r) => setTimeout(r, 250));
    expect(b.e.isLeader()).toBe(false);
    const stoppedAt = Date.now();
    await a.e.stop();
    expect(a.e.isLeader()).toBe(false);
    expect(a.log.at(-1)?.ev).toBe("stopped");
    await until(() => b.e.isLeader());
    expect(Date.now() - stoppedAt).toBeLessThan(FAST.leaseDurationMs); // no need to wait for expiry
    expect(mem.lease!.spec!.leaseTransitions).toBe(1);
  });

  it("takes over within one lease duration when the leader dies without releasing", async () => {
    const mem = new MemoryLease();
    const a = elector(mem, "a", { releaseOnStop: false });
    a.e.run();
    await until(() => a.e.isLeader());
    const b = elector(mem, "b");
    b.e.run();
    await new Promise((r) => setTimeout(r, 200)); // b has observed a's renewals
    await a.e.stop();
    const diedAt = Date.now();
    await until(() => b.e.isLeader());
    const tookMs = Date.now() - diedAt;
    expect(tookMs).toBeGreaterThan(FAST.leaseDurationMs - FAST.retryPeriodMs * 2);
    expect(tookMs).toBeLessThan(FAST.leaseDurationMs + FAST.retryPeriodMs * 3);
  });

  it("a partitioned leader stops leading before the standby takes over", async () => {
    const mem = new MemoryLease();
    const a = elector(mem, "a");
    a.e.run();
    await until(() => a.e.isLeader());
    const b = elector(mem, "b");
    b.e.run();
    await new Promise((r) => setTimeout(r, 200));
    a.store.partitioned = true;
    await until(() => b.e.isLeader());
    const aStopped = a.log.find((l) => l.ev === "stopped");
    const bStarted = b.log.find((l) => l.ev === "started");
    expect(aStopped).toBeDefined();
    expect(aStopped!.at).toBeLessThan(bStarted!.at);
    expect(a.e.isLeader()).toBe(false);
    expect(a.e.writeTimeLeftMs()).toBeNull();
    // healed: a sees b's live lease and stays a standby
    a.store.partitioned = false;
    await new Promise((r) => setTimeout(r, 300));
    expect(a.e.isLeader()).toBe(false);
    expect(b.e.isLeader()).toBe(true);
    expect(a.e.currentHolder()).toBe("b");
  });

  it("stops leading on time when a renewal hangs (no answer at all)", async () => {
    const mem = new MemoryLease();
    const a = elector(mem, "a");
    a.e.run();
    await until(() => a.e.isLeader());
    expect(a.e.writeTimeLeftMs()!).toBeGreaterThan(0);
    const hungAt = Date.now();
    a.store.get = () => new Promise(() => {}); // the API server stops answering
    await until(() => !a.e.isLeader());
    expect(Date.now() - hungAt).toBeLessThanOrEqual(FAST.renewDeadlineMs + 50);
    await until(() => a.log.some((l) => l.ev === "stopped"));
  });

  it("loses the race on 409 without claiming leadership", async () => {
    const mem = new MemoryLease();
    const a = elector(mem, "a");
    const b = elector(mem, "b");
    // b's view writes first between a's read and a's create
    const origGet = a.store.get;
    a.store.get = async () => {
      const l = await origGet();
      if (!mem.lease) await mem.view("b").create({ metadata: { name: "edgelb-sync-agent" }, spec: { holderIdentity: "b", leaseDurationSeconds: 60 } });
      return l;
    };
    a.e.run();
    await new Promise((r) => setTimeout(r, 300));
    expect(a.e.isLeader()).toBe(false);
    expect(a.log).toHaveLength(0);
    expect(a.e.currentHolder()).toBe("b");
    void b;
  });

  it("refuses unsafe timings", () => {
    const mem = new MemoryLease();
    expect(
      () => new LeaderElector({ store: mem.view("x"), identity: "x", timings: { leaseDurationMs: 5_000, renewDeadlineMs: 6_000 } }),
    ).toThrow(/lease duration/);
  });
});

describe("LeaderElector and the wall clock", () => {
  /** Steps the wall clock (Date.now) by `ms`, as NTP or a resumed VM does; the monotonic clock runs on. */
  function jumpWallClock(ms: number): void {
    const real = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => real() + ms);
  }

  it("a jump forward does not depose a leader that keeps renewing; the Lease shows wall time", async () => {
    const mem = new MemoryLease();
    const a = elector(mem, "a");
    a.e.run();
    await until(() => a.e.isLeader());
    const renewals = mem.writes.length;
    jumpWallClock(3_600_000);
    expect(a.e.isLeader()).toBe(true);
    await until(() => mem.writes.length >= renewals + 3); // three renewals after the jump
    expect(a.e.isLeader()).toBe(true);
    expect(a.log.map((l) => l.ev)).toEqual(["started"]);
    // renewTime is for humans and other tools: wall time, jump included
    expect(Date.parse(String(mem.lease!.spec!.renewTime))).toBeGreaterThan(Date.now() - 60_000);
  });

  it("a jump backward does not keep a leader that cannot renew leading", async () => {
    const mem = new MemoryLease();
    const a = elector(mem, "a");
    a.e.run();
    await until(() => a.e.isLeader());
    jumpWallClock(-3_600_000);
    const cutAt = performance.now();
    a.store.partitioned = true;
    await until(() => !a.e.isLeader(), FAST.leaseDurationMs * 2);
    expect(performance.now() - cutAt).toBeLessThanOrEqual(FAST.renewDeadlineMs + 50);
    await until(() => a.log.length === 2);
    expect(a.log.map((l) => l.ev)).toEqual(["started", "stopped"]);
  });
});
