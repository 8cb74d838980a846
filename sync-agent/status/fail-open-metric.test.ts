import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { registerFailOpen } from "./fail-open-metric.ts";

describe("fail-open gauge", () => {
  it("says whether every node fails open and how many Local Services do, read from the latest evaluation on scrape", async () => {
    const registry = new Registry();
    let latest: { failOpen: boolean; failOpenServices: string[]; gateway?: { failOpenBackends: string[] } } | undefined;
    registerFailOpen(registry, () => latest);
    let text = await registry.metrics();
    expect(text).toMatch(/^edgelb_fail_open\{scope="nodes"\} 0$/m);
    expect(text).toMatch(/^edgelb_fail_open\{scope="services"\} 0$/m);
    latest = { failOpen: false, failOpenServices: ["shop/web", "shop/api"] };
    text = await registry.metrics();
    expect(text).toMatch(/^edgelb_fail_open\{scope="nodes"\} 0$/m);
    expect(text).toMatch(/^edgelb_fail_open\{scope="services"\} 2$/m);
    expect(text).toMatch(/^edgelb_fail_open\{scope="gateway_backends"\} 0$/m);
    latest = { failOpen: true, failOpenServices: [], gateway: { failOpenBackends: ["apps/shop"] } };
    text = await registry.metrics();
    expect(text).toMatch(/^edgelb_fail_open\{scope="nodes"\} 1$/m);
    expect(text).toMatch(/^edgelb_fail_open\{scope="gateway_backends"\} 1$/m);
  });
});
