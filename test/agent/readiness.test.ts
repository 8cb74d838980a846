// /readyz says whether the agent can do its job in the cluster (informers
// synced), not whether the edge accepts its pushes: with a bad token every
// replica would be unready, and a PodDisruptionBudget would then hold a drain
// for a pod that cannot fix the token. The push lag is a metric and a log line.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { createAgent, type Agent } from "../../sync-agent/agent.ts";
import { attachCitizen, type AttachedCitizen } from "../../sync-agent/citizen/attach.ts";
import { CITIZEN_DEFAULTS } from "../../sync-agent/citizen/index.ts";
import { lbService, startWorld, waitFor, type LogLine, type World } from "./harness.ts";

let w: World;
let agent: Agent;
let citizen: AttachedCitizen;
const logs: LogLine[] = [];
beforeAll(async () => {
  w = await startWorld({ addressBase: "127.16.4", sink: "kv-api", nodes: 1, noAgent: true });
  const log = pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  agent = createAgent({ ...w.config, apiToken: "a-revoked-token" }, { log });
  citizen = attachCitizen(agent, { ...CITIZEN_DEFAULTS, leaderElect: false, metricsAddress: "127.16.4.100:0", maxPushLagMs: 200 });
  await citizen.start();
  await agent.start();
});
afterAll(async () => {
  await citizen?.stop();
  await agent?.stop();
  await w?.stop();
});

const get = (path: string) => fetch(`${citizen.citizen.metricsUrl}${path}`);

describe("readiness and push lag", () => {
  it("a leader whose pushes the edge refuses is ready once synced; the lag shows in a metric and one warning", async () => {
    w.cluster.create(lbService("web", { hostnames: "web.example.com" }));
    await waitFor(() => logs.some((l) => /cannot read the stored snapshot: .*403/.test(l.msg)), "the edge refuses the token");
    const ready = await waitFor(async () => {
      const res = await get("/readyz");
      return res.status === 200 ? res.text() : undefined;
    }, "ready");
    expect(ready).toMatch(/^ok: leader: informers synced/);
    expect(w.cf!.writes).toHaveLength(0);

    // The lag grows while nothing reaches the edge.
    const lag = await waitFor(async () => {
      const m = /^edgelb_push_lag_seconds (\S+)$/m.exec(await (await get("/metrics")).text());
      return m && Number(m[1]) > 0.2 ? Number(m[1]) : undefined;
    }, "push lag above --max-push-lag");
    expect(lag).toBeGreaterThan(0.2);
    const warning = await waitFor(() => logs.find((l) => /changes have not reached the edge for [\d.]+s/.test(l.msg)), "lag warning");
    expect(warning).toMatchObject({ level: 40, lastSuccessfulPush: "never" });
    // Retries go on; the warning is not repeated.
    const retried = () => logs.filter((l) => /cannot read the stored snapshot/.test(l.msg)).length;
    const failures = retried();
    await waitFor(() => retried() > failures, "another retry");
    expect(logs.filter((l) => /changes have not reached the edge/.test(l.msg))).toHaveLength(1);
  });
});
