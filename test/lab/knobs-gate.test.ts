// `npm start -- --gate`: `sim.edgelb.dev/fault=down` takes the node's gate
// down with it, as a dead machine would (its gate port refuses connections);
// `fault=up` (or removing the annotation) brings both back.
import net from "node:net";
import { pino } from "pino";
import { afterEach, expect, it } from "vitest";
import { startCluster } from "../../lab/cluster/cluster.ts";
import { startDemoGates } from "../../lab/demo/gates.ts";
import { watchKnobs } from "../../lab/demo/knobs.ts";
import { waitFor } from "../agent/harness.ts";

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

/** "refused", or the HTTP status of GET /healthz. */
async function gateAnswer(address: string, port: number): Promise<number | "refused"> {
  const connects = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: address, port }, () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
  if (!connects) return "refused";
  return (await fetch(`http://${address}:${port}/healthz`)).status;
}

it("a downed node's gate refuses connections; the others keep answering; fault=up brings it back", async () => {
  const cluster = await startCluster({ nodes: 2, addressBase: "127.86.3", healthzPort: 0 });
  stops.push(() => cluster.stop());
  const gates = await startDemoGates(cluster.nodes, pino({ level: "silent" }), 0, "demo");
  stops.push(() => gates.stop());
  const said: string[] = [];
  const knobs = watchKnobs(cluster, { info: (t) => said.push(t), warn: (t) => said.push(t) }, gates);
  stops.push(() => knobs.stop());
  const [one, two] = cluster.nodes as [(typeof cluster.nodes)[number], (typeof cluster.nodes)[number]];
  expect(await gateAnswer(two.address, gates.port)).toBe(200);

  const annotate = async (fault: string | null) => {
    const res = await fetch(`${cluster.url}/api/v1/nodes/${two.name}`, {
      method: "PATCH",
      headers: { "content-type": "application/merge-patch+json" },
      body: JSON.stringify({ metadata: { annotations: { "sim.edgelb.dev/fault": fault } } }),
    });
    expect(res.status).toBe(200);
    await knobs.settled();
  };
  await annotate("down");
  await waitFor(async () => (await gateAnswer(two.address, gates.port)) === "refused", "node-2's gate to refuse connections");
  expect(await gateAnswer(one.address, gates.port)).toBe(200);
  expect(gates.gates).toHaveLength(1);
  expect(said.at(-1)).toBe(`simulated node ${two.name} (${two.address}) now is "down": refuses connections, and kube-proxy's /healthz fails, and so does its node gate`);

  await annotate("up");
  await waitFor(async () => (await gateAnswer(two.address, gates.port)) === 200, "node-2's gate back on the same port");
  expect(gates.gates).toHaveLength(2);
  expect(said.at(-1)).toBe(`simulated node ${two.name} (${two.address}) now answers normally`);
});
