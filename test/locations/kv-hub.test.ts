// The KV emulation of the multi-location simulation behaves like Workers KV
// across locations (audit of issue 19): the writer reads its own write at
// once; another location that read the key before keeps its old value until
// the propagation delay has passed; reads are counted per location.
import { afterEach, describe, expect, it } from "vitest";
import { startKvHub, type KvHub } from "./kv-hub.ts";

let hub: KvHub | undefined;
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

describe("KV hub (Workers KV across locations)", () => {
  it("the writing location reads its write at once; another location sees it only after the propagation delay", async () => {
    let clock = 1_000_000;
    hub = await startKvHub({ host: "127.67.3.1", propagationMs: 60_000, now: () => clock });
    const key = (loc: string) => `${hub!.url}/${loc}/${encodeURIComponent("snapshot/home")}`;
    const read = async (loc: string) => {
      const r = await fetch(key(loc));
      return r.status === 404 ? undefined : await r.text();
    };
    expect(await fetch(key("a"), { method: "PUT", body: "v1" }).then((r) => r.status)).toBe(200);
    expect(await read("b")).toBe("v1");
    await fetch(key("a"), { method: "PUT", body: "v2" });
    expect(await read("a")).toBe("v2");
    clock += 59_999;
    expect(await read("b")).toBe("v1");
    clock += 1;
    expect(await read("b")).toBe("v2");
    // A delete, too, reaches a location that read the key before only after the delay.
    expect(await read("c")).toBe("v2");
    await fetch(key("a"), { method: "DELETE" });
    expect(await read("a")).toBeUndefined();
    expect(await read("c")).toBe("v2");
    expect(hub.reads.get("b")).toBe(3);
  });

  it("refreshReadTimes: a location keeps what it read for another propagation delay from now (others are not touched)", async () => {
    let clock = 1_000_000;
    hub = await startKvHub({ host: "127.84.3.1", propagationMs: 30_000, now: () => clock });
    const key = (loc: string) => `${hub!.url}/${loc}/${encodeURIComponent("snapshot/home")}`;
    const read = async (loc: string) => (await fetch(key(loc))).text();
    await fetch(key("a"), { method: "PUT", body: "v1" });
    expect(await read("b")).toBe("v1");
    expect(await read("c")).toBe("v1");
    clock += 29_000;
    await fetch(key("a"), { method: "PUT", body: "v2" });
    hub.refreshReadTimes("b");
    clock += 1_000;
    expect(await read("c")).toBe("v2");
    expect(await read("b")).toBe("v1");
    clock += 28_999;
    expect(await read("b")).toBe("v1");
    clock += 1;
    expect(await read("b")).toBe("v2");
  });
});
