// --region and --location reach the edge in the snapshot (issue 18): the real
// agent against the simulated cluster, pushing to the fake Workers KV API.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lbService, startWorld, type World } from "./harness.ts";

let w: World;
beforeAll(async () => {
  w = await startWorld({ addressBase: "127.27.1", nodes: 1, sink: "kv-api", config: { region: "eu-central", location: { lat: 50.11, lon: 8.68 } } });
});
afterAll(async () => {
  await w?.stop();
});

describe("the agent describes where its cluster is", () => {
  it("publishes its region and location in every snapshot", async () => {
    w.cluster.create(lbService("web", { hostnames: "web.example.com" }));
    const s = await w.waitForSnapshot((x) => x.services.length === 1, "the Service");
    expect(s.region).toBe("eu-central");
    expect(s.location).toEqual({ lat: 50.11, lon: 8.68 });
  });
});
