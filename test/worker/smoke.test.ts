import { env, exports } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";

describe("smoke", () => {
  it("reaches a loopback origin and has KV", async () => {
    const res = await fetch(inject("smokeOrigin"));
    expect(await res.text()).toBe("hello from 127.0.0.11");
    await (env as any).EDGELB_KV.put("x", "y");
    expect(await (env as any).EDGELB_KV.get("x")).toBe("y");
    const r2 = await exports.default.fetch("http://x/__edgelb/healthz");
    expect(r2.status).toBe(200);
  });
});
