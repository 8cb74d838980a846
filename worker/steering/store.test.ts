import { describe, expect, it } from "vitest";
import { memoryLogger } from "../log/index.ts";
import { LAST_GOOD_KEY, loadSteering } from "./store.ts";

/** A KV namespace in memory (the test's stand-in for Workers KV, not one of our modules). */
function memoryKv(initial: Record<string, string> = {}) {
  const data = new Map(Object.entries(initial));
  let puts = 0;
  return {
    data,
    puts: () => puts,
    get: async (key: string) => data.get(key) ?? null,
    put: async (key: string, value: string) => {
      puts++;
      data.set(key, value);
    },
  } as unknown as Pick<KVNamespace, "get" | "put"> & { data: Map<string, string>; puts(): number };
}

const GOOD = JSON.stringify({ "app.example.com": { policy: "failover", clusters: ["a", "b"] } });

describe("the steering setting an isolate serves", () => {
  it("remembers a good setting in KV, writing only when it changed", async () => {
    const kv = memoryKv();
    const pending: Promise<unknown>[] = [];
    const s = await loadSteering(GOOD, ["a", "b"], kv, memoryLogger(), (p) => pending.push(p));
    await Promise.all(pending);
    expect(s.source).toBe("env");
    expect(kv.data.get(LAST_GOOD_KEY)).toBe(GOOD);
    await Promise.all([loadSteering(GOOD, ["a", "b"], kv, memoryLogger(), (p) => pending.push(p)), ...pending]);
    await Promise.all(pending);
    expect(kv.puts()).toBe(1);
  });

  it("keeps the last good setting when the new one is refused, and says why", async () => {
    const kv = memoryKv({ [LAST_GOOD_KEY]: GOOD });
    const log = memoryLogger();
    const s = await loadSteering('{"app.example.com": {"policy": "nearest"}}', ["a", "b"], kv, log);
    expect(s.source).toBe("last-good");
    expect(s.steering.rules.map((r) => r.pattern)).toEqual(["app.example.com"]);
    expect(s.error).toMatch(/policy: must be one of/);
    expect(log.entries.find((e) => e.event === "steering.invalid")).toMatchObject({ level: "error", keeping: "the last good EDGELB_STEERING (from KV)" });
    expect(kv.data.get(LAST_GOOD_KEY)).toBe(GOOD);
  });

  it("with nothing good to keep, serves no rule (first claiming cluster) and says so", async () => {
    const log = memoryLogger();
    const s = await loadSteering("{", [], memoryKv(), log);
    expect(s).toMatchObject({ source: "none", error: expect.stringMatching(/not JSON/) });
    expect(s.steering.rules).toEqual([]);
    expect(log.entries.find((e) => e.event === "steering.invalid")?.keeping).toMatch(/no steering/);
  });
});
