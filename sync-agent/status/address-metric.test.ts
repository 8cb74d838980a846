import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { registerUnroutableNodes } from "./address-metric.ts";

describe("unroutable node address gauge", () => {
  it("counts the backend nodes Cloudflare would refuse, read from the latest topology on scrape", async () => {
    const registry = new Registry();
    let nodes: { unroutable?: string }[] | undefined;
    registerUnroutableNodes(registry, () => nodes);
    expect(await registry.metrics()).toMatch(/^edgelb_nodes_unroutable_address 0$/m);
    nodes = [{ unroutable: "a loopback address" }, {}, { unroutable: "a private address (RFC 1918)" }];
    expect(await registry.metrics()).toMatch(/^edgelb_nodes_unroutable_address 2$/m);
  });
});
