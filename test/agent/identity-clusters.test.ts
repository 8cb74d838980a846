// One cluster, one snapshot: two simulated clusters deployed with the same
// --cluster name push to one edge worker. The first one's snapshot carries its
// identity (kube-system UID); the second refuses to overwrite it with one
// fatal line, until it is told to --take-over; then the displaced cluster
// refuses in turn instead of fighting over the name.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { lbService, startWorld, waitFor, type LogLine, type World } from "./harness.ts";

const FATAL = 60;

let w: World;
let other: SimCluster;
beforeAll(async () => {
  w = await startWorld({ addressBase: "127.16.1", sink: "worker", nodes: 1, cluster: "home" });
  other = await startCluster({ standIn: true, nodes: 1, addressBase: "127.16.2", healthzPort: 0 });
});
afterAll(async () => {
  await w?.stop();
  await other?.stop();
});

const uid = (c: SimCluster) => (c.get("Namespace", "kube-system", "") as { metadata: { uid: string } }).metadata.uid;

function logger() {
  const logs: LogLine[] = [];
  return { logs, log: pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) }) };
}

describe("cluster identity", () => {
  it("a second cluster under the same name refuses to push, with one fatal line, until --take-over", async () => {
    const first = await w.waitForSnapshot((s) => s.nodes.length === 1, "first cluster's snapshot");
    expect(first.clusterId).toBe(uid(w.cluster));
    expect(first.nodes[0]!.address).toMatch(/^127\.16\.1\./);

    // Same name, same edge, another cluster.
    const b = logger();
    const intruder = await w.startAgent({ kubeconfig: other.kubeconfigPath }, { log: b.log });
    // It keeps retrying (and keeps refusing) — but says so once.
    await waitFor(() => b.logs.filter((l) => /cannot read the stored snapshot/.test(l.msg)).length >= 2, "the second cluster retried");
    const fatal = b.logs.filter((l) => l.level === FATAL);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ cluster: "home", storedClusterId: uid(w.cluster), clusterId: uid(other) });
    expect(fatal[0]!.msg).toMatch(/belongs to another cluster .*refusing to push.*--take-over/);
    expect(intruder.controller.writes).toBe(0);
    // Still the first cluster's snapshot (which may have moved on meanwhile, e.g. its node's health settling:
    // comparing generations raced that): the intruder wrote nothing.
    const still = await w.stored();
    expect(still?.clusterId).toBe(uid(w.cluster));
    expect(still!.generation).toBeGreaterThanOrEqual(first.generation);
    await intruder.stop();

    // The operator says the new cluster replaces the old one.
    const c = logger();
    await w.startAgent({ kubeconfig: other.kubeconfigPath, takeOver: true }, { log: c.log });
    const taken = await w.waitForSnapshot((s) => s.clusterId === uid(other), "the snapshot taken over");
    expect(taken.nodes[0]!.address).toMatch(/^127\.16\.2\./);
    expect(taken.generation).toBeGreaterThan(first.generation); // continued, never backwards
    expect(c.logs.some((l) => l.level === 40 && /taking over cluster name "home" from cluster/.test(l.msg))).toBe(true);

    // The displaced cluster's next change does not win the name back.
    const fatalBefore = w.logs.filter((l) => l.level === FATAL).length;
    w.cluster.create(lbService("web", { hostnames: "web.example.com" }));
    await waitFor(() => w.logs.filter((l) => l.level === FATAL).length > fatalBefore, "the displaced cluster refuses");
    expect(w.logs.filter((l) => l.level === FATAL).at(-1)).toMatchObject({ storedClusterId: uid(other), clusterId: uid(w.cluster) });
    expect(await w.stored()).toMatchObject({ clusterId: uid(other), services: [] });
  });
});
