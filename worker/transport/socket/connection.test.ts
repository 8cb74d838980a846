import { describe, expect, it } from "vitest";
import { Deadline } from "./connection.ts";

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Deadline (one timer per request)", () => {
  it("fires the latest deadline set, once, not the earlier one it replaced", async () => {
    const d = new Deadline();
    const fired: string[] = [];
    const started = Date.now();
    d.set(20, () => fired.push("connect"));
    d.set(120, () => fired.push("head"));
    await expect.poll(() => fired, { timeout: 2000, interval: 10 }).toEqual(["head"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    await settle(50);
    expect(fired).toEqual(["head"]);
  });

  it("fires an earlier deadline set after a later one on time", async () => {
    const d = new Deadline();
    const fired: string[] = [];
    d.set(10_000, () => fired.push("late"));
    d.set(10, () => fired.push("soon"));
    await expect.poll(() => fired, { timeout: 2000, interval: 10 }).toEqual(["soon"]);
    d.clear();
  });

  it("fires nothing while held or after clear", async () => {
    const d = new Deadline();
    const fired: string[] = [];
    d.set(10, () => fired.push("held"));
    d.hold();
    const e = new Deadline();
    e.set(10, () => fired.push("cleared"));
    e.clear();
    await settle(60);
    expect(fired).toEqual([]);
    d.set(10, () => fired.push("after hold"));
    await expect.poll(() => fired, { timeout: 2000, interval: 10 }).toEqual(["after hold"]);
  });
});
