import { describe, expect, it } from "vitest";
import { Deadline } from "./index.ts";

describe("Deadline", () => {
  it("runs on the runtime's own timers, not node:timers' Timeout objects", () => {
    // wrangler.toml's no_nodejs_global_timers: with nodejs_compat and a date past 2026-02-10, the
    // global setTimeout is node:timers' (a Timeout object, a bound callback and spread arguments
    // per call: ~5 k instructions per request more, npm run bench:instructions).
    const id = setTimeout(() => {}, 60_000);
    clearTimeout(id);
    expect(typeof id).toBe("number");
  });

  it("fires once, at the last deadline set, and not after clear()", async () => {
    const fired: string[] = [];
    const d = new Deadline();
    d.set(5, () => fired.push("first"));
    d.set(30, () => fired.push("second"));
    await new Promise((r) => setTimeout(r, 60));
    expect(fired).toEqual(["second"]);
    const c = new Deadline();
    c.set(5, () => fired.push("cleared"));
    c.clear();
    await new Promise((r) => setTimeout(r, 30));
    expect(fired).toEqual(["second"]);
  });
});
