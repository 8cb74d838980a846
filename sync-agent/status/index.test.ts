import { describe, expect, it } from "vitest";
import type { CoreV1Event, V1LoadBalancerIngress, V1Service } from "@kubernetes/client-node";
import { EventGone, EventRecorder, StatusWriter, type EventSink, type PublishedLike, type VerdictLike } from "./index.ts";

class FakeEvents implements EventSink {
  created: CoreV1Event[] = [];
  patches: Array<{ name: string; patch: Partial<CoreV1Event> }> = [];
  async create(_ns: string, e: CoreV1Event) {
    this.created.push(e);
    return e;
  }
  async patch(_ns: string, name: string, patch: Partial<CoreV1Event>) {
    if (!this.created.some((e) => e.metadata?.name === name)) throw new EventGone(name);
    this.patches.push({ name, patch });
  }
}

function cluster() {
  const services = new Map<string, V1Service>();
  let rv = 1;
  const put = (name: string, ingress: V1LoadBalancerIngress[] = []) => {
    services.set(name, { metadata: { namespace: "shop", name, uid: name, resourceVersion: String(rv++) }, spec: { type: "LoadBalancer" }, status: { loadBalancer: { ingress } } });
  };
  const calls: Array<{ name: string; ingress: V1LoadBalancerIngress[] }> = [];
  const client = {
    async patchIngress(_ns: string, name: string, ingress: V1LoadBalancerIngress[]) {
      calls.push({ name, ingress });
      put(name, ingress);
      return services.get(name)!;
    },
  };
  return { services, put, calls, client };
}

describe("StatusWriter", () => {
  it("only the leader writes; status and Events follow the published snapshot", async () => {
    const c = cluster();
    c.put("web");
    const sink = new FakeEvents();
    const events = new EventRecorder({ sink, instance: "agent-a" });
    let leader = false;
    const w = new StatusWriter({ client: c.client, events, isLeader: () => leader });
    const verdicts = new Map<string, VerdictLike>([["shop/web", { kind: "served" }]]);
    const published: PublishedLike = { nodes: [{ name: "n1", healthy: true }], services: [{ namespace: "shop", name: "web", hostnames: ["web.example.com"] }] };

    await w.reconcile({ services: [...c.services.values()], verdicts, published });
    await events.flush();
    expect(c.calls).toEqual([]);
    expect(sink.created).toEqual([]);

    leader = true;
    await w.reconcile({ services: [...c.services.values()], verdicts, published });
    await events.flush();
    expect(c.calls).toEqual([{ name: "web", ingress: [{ hostname: "web.example.com" }] }]);
    expect(sink.created.map((e) => [e.reason, e.message])).toEqual([["EnsuredLoadBalancer", "Ensured load balancer: web.example.com"]]);
    expect(sink.created[0]).toMatchObject({ type: "Normal", involvedObject: { kind: "Service", namespace: "shop", name: "web" }, source: { component: "edgelb-sync-agent" } });

    // level-triggered: same picture, nothing written
    await w.reconcile({ services: [...c.services.values()], verdicts, published });
    expect(c.calls).toHaveLength(1);
  });

  it("calls during a slow round fold into one follow-up with the latest picture", async () => {
    const c = cluster();
    c.put("web");
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = {
      async patchIngress(ns: string, name: string, ingress: V1LoadBalancerIngress[]) {
        await gate;
        return c.client.patchIngress(ns, name, ingress);
      },
    };
    const events = new EventRecorder({ sink: new FakeEvents(), instance: "agent-a" });
    const w = new StatusWriter({ client: slow, events, isLeader: () => true });
    const served = new Map<string, VerdictLike>([["shop/web", { kind: "served" }]]);
    const edge = (host: string): PublishedLike => ({ nodes: [], services: [{ namespace: "shop", name: "web", hostnames: [host] }] });
    const first = w.reconcile({ services: [...c.services.values()], verdicts: served, published: edge("a.example.com") });
    const folded = [1, 2, 3].map((i) => w.reconcile({ services: [...c.services.values()], verdicts: served, published: edge(`v${i}.example.com`) }));
    expect(folded[0]).toBe(folded[2]);
    release();
    await first;
    const results = await Promise.all(folded);
    expect(results[0]).toBe(results[2]);
    // one round for the first call, one for the latest picture; v1 and v2 never written
    expect(c.calls.map((x) => x.ingress)).toEqual([[{ hostname: "a.example.com" }], [{ hostname: "v3.example.com" }]]);
  });

  it("a node flapping health writes no Event at all; a node set flapping bumps one Event's count", async () => {
    const c = cluster();
    c.put("web", [{ hostname: "web.example.com" }]);
    const sink = new FakeEvents();
    const events = new EventRecorder({ sink, instance: "agent-a" });
    const w = new StatusWriter({ client: c.client, events, isLeader: () => true });
    const verdicts = new Map<string, VerdictLike>([["shop/web", { kind: "served" }]]);
    const snap = (nodes: { name: string; healthy: boolean }[]): PublishedLike => ({
      nodes,
      services: [{ namespace: "shop", name: "web", hostnames: ["web.example.com"] }],
    });
    for (let i = 0; i < 200; i++) {
      await w.reconcile({ services: [...c.services.values()], verdicts, published: snap([{ name: "n1", healthy: true }, { name: "n2", healthy: i % 2 === 0 }]) });
    }
    await events.flush();
    expect(sink.created).toEqual([]);

    for (let i = 0; i < 200; i++) {
      const nodes = [{ name: "n1", healthy: true }, ...(i % 2 === 0 ? [{ name: "n2", healthy: true }] : [])];
      await w.reconcile({ services: [...c.services.values()], verdicts, published: snap(nodes) });
    }
    await events.flush();
    const writes = sink.created.length + sink.patches.length;
    expect(writes).toBeLessThanOrEqual(25); // client-go's burst per object
    expect(sink.created).toHaveLength(1);
    expect(sink.created[0]!.message).toBe("Updated load balancer with new hosts");
    expect(sink.patches.at(-1)!.patch.count).toBe(writes);
  });

  it("a restarted agent does not re-announce what the edge already serves", async () => {
    const c = cluster();
    c.put("web", [{ hostname: "web.example.com" }]);
    const sink = new FakeEvents();
    const events = new EventRecorder({ sink, instance: "agent-a" });
    const w = new StatusWriter({ client: c.client, events, isLeader: () => true });
    const verdicts = new Map<string, VerdictLike>([["shop/web", { kind: "served" }]]);
    // before the stored snapshot is read
    await w.reconcile({ services: [...c.services.values()], verdicts, published: null });
    // after: the edge serves it already
    const published: PublishedLike = { nodes: [{ name: "n1", healthy: true }], services: [{ namespace: "shop", name: "web", hostnames: ["web.example.com"] }] };
    await w.reconcile({ services: [...c.services.values()], verdicts, published });
    await events.flush();
    expect(sink.created).toEqual([]);
    expect(c.calls).toEqual([]);
  });

  it("a Service we cannot serve gets a Warning saying why", async () => {
    const c = cluster();
    c.put("nohost");
    const sink = new FakeEvents();
    const events = new EventRecorder({ sink, instance: "agent-a" });
    const w = new StatusWriter({ client: c.client, events, isLeader: () => true });
    const reason = "no hostname: set the edgelb.dev/hostnames annotation or --default-domain";
    await w.reconcile({
      services: [...c.services.values()],
      verdicts: new Map([["shop/nohost", { kind: "skipped", reason }]]),
      published: { nodes: [], services: [] },
    });
    await events.flush();
    expect(sink.created.map((e) => [e.type, e.reason, e.message])).toEqual([["Warning", "SyncLoadBalancerFailed", `Error syncing load balancer: ${reason}`]]);
  });
});
