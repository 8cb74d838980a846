// Who makes a location "busy" (rv-proxy 5): only a request that goes to an origin of a served
// cluster starts the fast path's check at the generations object. An unknown hostname, a control
// path or an answer from the edge itself (404, 403 source range) never does: anyone on the
// internet can send those from many places, and each busy location costs object requests a day.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DAY_MS, DEFAULT_FAST_BUDGET, UNKNOWN_HOST_SHARE, type BudgetDay } from "../../worker/generations/budget.ts";
import { lab, nodesOf, service, snapshot, testEdge, uniqueCluster } from "./helpers.ts";

const real = (env as unknown as { EDGELB_GENERATIONS: DurableObjectNamespace }).EDGELB_GENERATIONS;

/** The generations namespace, counting calls to the object (the fast path takes a new stub per call); `object`: an object of its own. */
function countingGenerations(object?: string) {
  let calls = 0;
  const ns = {
    idFromName: (name: string) => real.idFromName(object ?? name),
    get: (id: DurableObjectId) => {
      calls++;
      return real.get(id);
    },
  } as unknown as DurableObjectNamespace;
  return { ns, calls: () => calls };
}

async function busyEdge(holdS: string, vars: Record<string, string> & { object?: string } = {}) {
  const cluster = vars.EDGELB_CLUSTERS ?? uniqueCluster("busy");
  const gens = countingGenerations(vars.object);
  let now = Date.now();
  const cache = await caches.open(uniqueCluster("busy-cache"));
  const { object: _object, ...rest } = vars;
  const edge = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_FAST_HOLD: holdS, EDGELB_FAST_CHECK: "5", EDGELB_GENERATIONS: gens.ns, ...rest }, { cache, now: () => now });
  const node = lab.nodes[0]!;
  const snap = (extra: string[] = []) =>
    snapshot(cluster, nodesOf([node]), [
      service({ name: "www", hostnames: ["www.example.com", ...extra], nodePort: lab.nodePort }),
      service({ name: "admin", hostnames: ["admin.example.com"], nodePort: lab.nodePort, sourceRanges: ["203.0.113.0/24"] }),
    ]);
  await edge.seed(snap());
  const afterSeed = gens.calls(); // the push's publish
  /** What the internet can send that the edge answers itself, for a hostname it serves or on a control path. */
  const refused = async () => {
    for (let i = 0; i < 10; i++) {
      now += 6_000; // past the check interval and any lease each time
      expect((await edge.request("admin.example.com", "/", { headers: { "cf-connecting-ip": "198.51.100.7" } })).status).toBe(403);
      expect((await edge.request("localhost", "/__edgelb/")).status).toBeLessThan(500);
    }
  };
  const routed = async (host = "www.example.com") => {
    const res = await edge.request(host);
    await res.body?.cancel();
    return res.status;
  };
  return { edge, cluster, snap, objectCalls: () => gens.calls() - afterSeed, refused, routed, advance: (ms: number) => (now += ms) };
}

describe("the fast path's location is made busy by routed requests; unknown hostnames check at most once a minute", () => {
  it("held checks: source-range refusals and control paths start none; unknown hostnames one a minute; routed requests one per check", async () => {
    const t = await busyEdge("0.2");
    await t.refused();
    expect(t.objectCalls()).toBe(0);
    // 2 minutes of requests for hostnames next to a served one, every 6 s: the first (nothing known yet) and one a minute later.
    for (let i = 0; i < 20; i++) {
      expect((await t.edge.request(`new-${i}.example.com`)).status).toBe(404);
      t.advance(6_000);
    }
    expect(t.objectCalls()).toBe(2);
    expect(t.edge.logs.filter((e) => e.event === "host.unknown").length).toBe(20);
    // Routed requests keep the location busy: a check each time one is due.
    for (let i = 0; i < 5; i++) {
      expect(await t.routed()).toBe(200);
      t.advance(6_000);
    }
    expect(t.objectCalls()).toBe(2 + 5);
  });

  it("requests to the worker's workers.dev name start none: it serves no app's hostname, and there every isolate would check on its own (rv-proxy s6 3)", async () => {
    // With control hosts named, workers.dev is not one of them, so its requests reach the hostname lookup.
    const t = await busyEdge("0.2", { EDGELB_CONTROL_HOSTS: "localhost" });
    for (let i = 0; i < 20; i++) {
      expect((await t.edge.request("edgelb.acme.workers.dev", `/page-${i}`)).status).toBe(404);
      t.advance(6_000);
    }
    expect(t.objectCalls()).toBe(0);
    expect(await t.routed()).toBe(200);
    expect(t.objectCalls()).toBe(1);
  });

  it("polling (EDGELB_FAST_HOLD 0): refused requests never ask the object; after a routed request the next refresh does", async () => {
    const t = await busyEdge("0");
    await t.refused();
    expect(t.objectCalls()).toBe(0);
    expect(await t.routed()).toBe(200);
    t.advance(6_000);
    expect((await t.edge.request("admin.example.com", "/", { headers: { "cf-connecting-ip": "198.51.100.7" } })).status).toBe(403); // its refresh asks: the location was busy
    expect(t.objectCalls()).toBe(1);
  });

  it("a new hostname pushed elsewhere reaches a location that serves nothing else within one check of its first 404, not at KV's pace (rv-ops 7)", async () => {
    // KV re-read only every 10 min here: what this location learns in the test, it learns from the object.
    const t = await busyEdge("0.2", { EDGELB_CACHE_TTL: "600" });
    expect(await t.routed()).toBe(200); // its first check, answered at once
    t.advance(70_000); // quiet since: no check held now
    const calls = t.objectCalls();
    // The agent's push for a new Service lands in another location (its own edge: a push publishes to the object).
    const other = testEdge({ EDGELB_CLUSTERS: t.cluster, EDGELB_FAST_HOLD: "0.2" });
    await other.seed(t.snap(["new.example.com"]));
    expect(await t.routed("new.example.com")).toBe(404); // not known yet; starts a check, which brings it
    expect(t.objectCalls() - calls).toBe(1);
    expect(await t.routed("new.example.com")).toBe(200);
  });
});

describe("strangers cannot spend the object's daily budget with requests for unknown hostnames (rv-proxy s6 3)", () => {
  /** 10 requests for `host(i)`, 61 s apart (each past the minute between unknown-host checks); the object requests they made. */
  const tenMinutes = async (t: Awaited<ReturnType<typeof busyEdge>>, host: (i: number) => string) => {
    const before = t.objectCalls();
    for (let i = 0; i < 10; i++) {
      expect((await t.edge.request(host(i))).status).toBe(404);
      t.advance(61_000);
    }
    return t.objectCalls() - before;
  };

  it("a made-up name under another domain starts no check; one next to a served name (www.example.com) starts one a minute", async () => {
    const t = await busyEdge("0.2");
    expect(await tenMinutes(t, () => "nobody.example.net")).toBe(0);
    expect(await tenMinutes(t, (i) => `x${i}.deep.example.com`)).toBe(0);
    expect(await tenMinutes(t, () => "new.example.com")).toBe(10);
  });

  it("past half the day's budget the object answers an unknown-host check at once and the location starts no more of them; routed checks go on", async () => {
    const object = uniqueCluster("half-budget");
    // The object's day as it stored it, just past half the budget (its clock is the real one).
    const stub = real.get(real.idFromName(object));
    await runInDurableObject(stub, async (_o, state) => {
      await state.storage.put("budget", { day: Math.floor(Date.now() / DAY_MS), count: DEFAULT_FAST_BUDGET * UNKNOWN_HOST_SHARE + 1, spentSaid: false } satisfies BudgetDay);
    });
    // A quiet location (nothing but 404s): its first check learns it, then none for the hour.
    const quiet = await busyEdge("0.2", { object });
    expect(await tenMinutes(quiet, () => "new.example.com")).toBe(1);
    expect(quiet.edge.logs.filter((e) => e.event === "config.fast_unknown_hosts_paused")).toEqual([expect.objectContaining({ level: "info", retryInMs: 3_600_000 })]);
    // A busy location learns it from its routed checks' answers: 404s then ask nothing, routed requests still check.
    const busy = await busyEdge("0.2", { object });
    expect(await busy.routed()).toBe(200);
    expect(busy.objectCalls()).toBe(1);
    expect(await tenMinutes(busy, () => "new.example.com")).toBe(0);
    expect(await busy.routed()).toBe(200);
    expect(busy.objectCalls()).toBe(2);
  });
});
