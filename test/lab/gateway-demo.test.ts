// The lab's Gateway example (lab/demo/gateway.ts, created by `npm start`):
// through the agent and the real worker, shop.localhost splits by path and
// canary.localhost by weight; both routes report Accepted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedGatewayDemo } from "../../lab/demo/gateway.ts";
import { startWorld, waitFor, type World } from "../agent/harness.ts";

let w: World;
beforeAll(async () => {
  w = await startWorld({ addressBase: "127.25.4", nodes: 2, sink: "worker", noAgent: true });
  seedGatewayDemo(w.cluster);
  seedGatewayDemo(w.cluster); // idempotent: a second run creates nothing and throws nothing
  await w.startAgent();
});
afterAll(async () => {
  await w?.stop();
});

const serviceOf = (port: number) => w.cluster.list("Service").find((s) => s.spec.ports?.[0]?.nodePort === port)?.metadata.name;
async function who(host: string, path: string): Promise<string> {
  const res = await w.request(host, path);
  const body = (await res.json().catch(() => ({}))) as { port?: number };
  return body.port ? (serviceOf(body.port) ?? "?") : `status ${res.status}`;
}

describe("the lab's Gateway example", () => {
  it("splits shop.localhost by path and canary.localhost by weight", async () => {
    await waitFor(async () => (await who("shop.localhost", "/api/cart")) === "shop-api", "shop.localhost/api served", 10_000, 50);
    expect(await who("shop.localhost", "/")).toBe("shop-web");
    const seen = new Map<string, number>();
    // 90/10 over 200 requests: P(no app-v2 at all) ≈ 7e-10, P(app-v1 outside 150..199) is as small.
    for (let i = 0; i < 200; i++) {
      const s = await who("canary.localhost", "/");
      seen.set(s, (seen.get(s) ?? 0) + 1);
    }
    expect((seen.get("app-v1") ?? 0) + (seen.get("app-v2") ?? 0)).toBe(200);
    expect(seen.get("app-v2") ?? 0).toBeGreaterThanOrEqual(1);
    expect(seen.get("app-v1") ?? 0).toBeGreaterThanOrEqual(150);
    expect(seen.get("app-v1") ?? 0).toBeLessThanOrEqual(199);
    for (const name of ["shop", "canary"]) {
      await waitFor(() => w.cluster.get("HTTPRoute", name).status?.parents?.[0]?.conditions?.find((c: any) => c.type === "Accepted")?.status === "True", `${name} Accepted`);
    }
  });
});
