// The generations object's daily budget (rv-proxy 5): the pure back-off, the day's count, and the
// real object (Miniflare) answering a check at once with a retry-after past it while a push is
// still stored.
import { env, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { memoryLogger } from "../log/index.ts";
import { MAX_RETRY_AFTER_MS, type WatchableGenerationsApi } from "./api.ts";
import { BUDGET_RETRY_MIN_MS, BUDGET_SAVE_EVERY, budgetRetryAfter, DailyBudget, DAY_MS, DEFAULT_FAST_BUDGET, type BudgetDay, type BudgetStorage } from "./budget.ts";
import { snap, unique } from "../config/test-kit.ts";

function memoryStorage() {
  const data = new Map<string, unknown>();
  let puts = 0;
  const storage = {
    get: async (key: string) => structuredClone(data.get(key)),
    put: async (key: string, value: unknown) => {
      puts++;
      data.set(key, structuredClone(value));
    },
  } as unknown as BudgetStorage;
  return { storage, data, puts: () => puts };
}

describe("budgetRetryAfter (pure)", () => {
  it("nothing within the budget or without one; past it 60-300 s, never shorter as the day's count grows", () => {
    expect(budgetRetryAfter(80_000, 80_000, 0.5)).toBeUndefined();
    expect(budgetRetryAfter(10 ** 9, 0, 0.5)).toBeUndefined();
    expect(budgetRetryAfter(80_001, 80_000, 0)).toBeGreaterThanOrEqual(BUDGET_RETRY_MIN_MS);
    expect(budgetRetryAfter(80_001, 80_000, 0)).toBeLessThan(BUDGET_RETRY_MIN_MS + 100);
    // At 110 % of the budget and beyond: the longest, spread over the last minute.
    expect(budgetRetryAfter(88_000, 80_000, 0)).toBe(MAX_RETRY_AFTER_MS - 60_000);
    expect(budgetRetryAfter(87_000, 80_000, 0)).toBeLessThan(MAX_RETRY_AFTER_MS - 60_000);
    expect(budgetRetryAfter(100_000, 80_000, 0.999)).toBeLessThanOrEqual(MAX_RETRY_AFTER_MS);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 ** 7 }), fc.integer({ min: 1, max: 10 ** 7 }), fc.integer({ min: 0, max: 10 ** 7 }), fc.double({ min: 0, max: 1, noNaN: true }), (budget, over, more, random) => {
        const a = budgetRetryAfter(budget + over, budget, random)!;
        const b = budgetRetryAfter(budget + over + more, budget, random)!;
        expect(Number.isInteger(a)).toBe(true);
        expect(a).toBeGreaterThanOrEqual(BUDGET_RETRY_MIN_MS);
        expect(b).toBeLessThanOrEqual(MAX_RETRY_AFTER_MS);
        expect(b).toBeGreaterThanOrEqual(a);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("DailyBudget", () => {
  it("counts per UTC day, says fast.budget_spent once a day, writes the count every few hundred requests and starts again at midnight", async () => {
    const s = memoryStorage();
    const log = memoryLogger();
    let now = 20 * DAY_MS + 3_600_000;
    const budget = new DailyBudget({ budget: 1_000, storage: s.storage, now: () => now, random: () => 0.5, log });
    const answers: (number | undefined)[] = [];
    for (let i = 0; i < 1_200; i++) answers.push(await budget.spend());
    expect(answers.slice(0, 1_000).every((a) => a === undefined)).toBe(true);
    expect(answers.slice(1_000).every((a) => a !== undefined && a >= BUDGET_RETRY_MIN_MS)).toBe(true);
    const said = log.entries.filter((e) => e.event === "fast.budget_spent");
    expect(said).toEqual([expect.objectContaining({ level: "warn", budget: 1_000, requests: 1_001, until: new Date(21 * DAY_MS).toISOString() })]);
    // Not a row write per request: at the crossing and every BUDGET_SAVE_EVERY.
    expect(s.puts()).toBeLessThanOrEqual(1 + Math.ceil(1_200 / BUDGET_SAVE_EVERY));
    now = 21 * DAY_MS + 1;
    expect(await budget.spend()).toBeUndefined();
    expect(await budget.count()).toBe(1);
  });

  it("an object started again the same day goes on from the stored count (and does not say it twice)", async () => {
    const s = memoryStorage();
    const now = 30 * DAY_MS + 5;
    s.data.set("budget", { day: 30, count: 999, spentSaid: false } satisfies BudgetDay);
    const log = memoryLogger();
    const budget = new DailyBudget({ budget: 1_000, storage: s.storage, now: () => now, random: () => 0, log });
    expect(await budget.spend()).toBeUndefined();
    expect(await budget.spend()).toBeGreaterThanOrEqual(BUDGET_RETRY_MIN_MS);
    const again = new DailyBudget({ budget: 1_000, storage: s.storage, now: () => now, random: () => 0, log });
    expect(await again.spend()).toBeGreaterThanOrEqual(BUDGET_RETRY_MIN_MS);
    expect(log.entries.filter((e) => e.event === "fast.budget_spent")).toHaveLength(1);
  });

  it("a stored count it cannot read, or a storage that fails, refuses nothing", async () => {
    const log = memoryLogger();
    const broken = { get: async () => ({ day: "x", count: -1 }), put: async () => { throw new Error("storage down"); } } as unknown as BudgetStorage;
    const budget = new DailyBudget({ budget: 3, storage: broken, now: () => 5, random: () => 0, log });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await budget.spend());
    expect(answers.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    for (const a of answers.slice(3)) expect(a).toBeGreaterThanOrEqual(BUDGET_RETRY_MIN_MS);
  });
});

describe("the generations object past its daily budget", () => {
  const ns = (env as unknown as { EDGELB_GENERATIONS: DurableObjectNamespace }).EDGELB_GENERATIONS;

  it("a check is answered at once with a retry-after (not held), what changed still rides along, and a push is still stored", async () => {
    const stub = ns.get(ns.idFromName(unique("budget-object"))) as unknown as WatchableGenerationsApi & { requestsToday(): Promise<number> };
    // The day's count as the object stored it (before an eviction) after 80,000 - 4 requests.
    await runInDurableObject(stub as unknown as DurableObjectStub, async (_o, state) => {
      await state.storage.put("budget", { day: Math.floor(Date.now() / DAY_MS), count: DEFAULT_FAST_BUDGET - 4, spentSaid: false } satisfies BudgetDay);
    });
    const cluster = unique("budget");
    const s1 = JSON.stringify(snap(cluster, 1, "one.example.com"));
    expect(await stub.publish(cluster, { kind: "snapshot", generation: 1, epoch: 1 }, s1)).toMatchObject({ stored: true });
    expect((await stub.watch(null, 0)).retryAfterMs).toBeUndefined();
    const known = { [cluster]: "snapshot:1:1" };
    // Within the budget a check is held (nothing changed) ...
    const quiet = await stub.watch(known, 300);
    expect(quiet).toMatchObject({ held: true });
    expect(quiet.retryAfterMs).toBeUndefined();
    expect((await stub.watch(known, 0)).retryAfterMs).toBeUndefined();
    expect(await stub.requestsToday()).toBe(DEFAULT_FAST_BUDGET);
    // ... past it: answered at once, not held for 20 s, with the back-off.
    const t0 = Date.now();
    const spent = await stub.watch(known, 20_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(spent.held).toBe(false);
    expect(spent.retryAfterMs).toBeGreaterThanOrEqual(BUDGET_RETRY_MIN_MS);
    expect(spent.retryAfterMs).toBeLessThanOrEqual(MAX_RETRY_AFTER_MS);
    // A push is never refused, and the next check carries it at once.
    const s2 = JSON.stringify(snap(cluster, 2, "two.example.com"));
    expect(await stub.publish(cluster, { kind: "snapshot", generation: 2, epoch: 1 }, s2)).toMatchObject({ stored: true });
    const next = await stub.watch(known, 20_000);
    expect(next.values[cluster]?.text).toBe(s2);
    expect(next.held).toBe(false);
    expect(next.retryAfterMs).toBeGreaterThanOrEqual(BUDGET_RETRY_MIN_MS);
  });
});
