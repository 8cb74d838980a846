// API semantics of the fake server over raw HTTP, checked against what a real
// kube-apiserver does: resourceVersions, LIST paging, WATCH replay and expiry,
// conflicts, /status, finalizers, patches, Service allocation, Status errors.
import * as k8s from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { kubeconfigYaml } from "../../lab/cluster/api/kubeconfig.ts";
import { ApiServer } from "../../lab/cluster/api/server.ts";
import { waitFor } from "../../lab/cluster/wait.ts";

let api: ApiServer;
beforeEach(async () => {
  api = await ApiServer.start({ bookmarkIntervalMs: 50 });
});
afterEach(async () => {
  await api.stop();
});

const SVC = "/api/v1/namespaces/default/services";
const MERGE = "application/merge-patch+json";

async function call(method: string, path: string, body?: unknown, contentType = "application/json", accept = "application/json") {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { "content-type": contentType, accept },
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const service = (name: string, spec: Record<string, unknown> = {}, labels: Record<string, string> = {}) => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, labels },
  spec: { type: "LoadBalancer", ports: [{ name: "http", port: 80 }], ...spec },
});

async function create(name: string, spec?: Record<string, unknown>, labels?: Record<string, string>) {
  const r = await call("POST", SVC, service(name, spec, labels));
  expect(r.status).toBe(201);
  return r.body;
}

/** A raw watch stream: events as they arrive, and whether the server ended it. */
function watch(path: string) {
  const events: any[] = [];
  const ac = new AbortController();
  let ended = false;
  const done = (async () => {
    const res = await fetch(`${api.url}${path}`, { signal: ac.signal });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        events.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
      }
    }
    ended = true;
  })().catch(() => {});
  return { events, done, ended: () => ended, close: () => ac.abort() };
}

const brief = (e: any) => `${e.type} ${e.object?.metadata?.name ?? e.object?.reason}`;

describe("resourceVersion, LIST and WATCH", () => {
  it("uses one global monotonic resourceVersion, and a no-op write neither bumps it nor emits an event", async () => {
    const a = await create("a");
    const slice = await call("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", {
      metadata: { name: "a-1", labels: { "kubernetes.io/service-name": "a" } },
      addressType: "IPv4",
      endpoints: [],
    });
    expect(Number(slice.body.metadata.resourceVersion)).toBe(Number(a.metadata.resourceVersion) + 1);

    const w = watch(`${SVC}?watch=1&resourceVersion=${slice.body.metadata.resourceVersion}`);
    await waitFor(() => api.watchCount === 1, "watch open");
    const same = await call("PUT", `${SVC}/a`, a);
    expect(same.body.metadata.resourceVersion).toBe(a.metadata.resourceVersion);
    const samePatch = await call("PATCH", `${SVC}/a`, { spec: { type: "LoadBalancer" } }, MERGE);
    expect(samePatch.body.metadata.resourceVersion).toBe(a.metadata.resourceVersion);
    expect(api.store.resourceVersion).toBe(Number(slice.body.metadata.resourceVersion));

    await call("PATCH", `${SVC}/a`, { metadata: { labels: { x: "1" } } }, MERGE);
    await waitFor(() => w.events.length === 1, "one event");
    expect(w.events.map(brief)).toEqual(["MODIFIED a"]);
    expect(Number(w.events[0].object.metadata.resourceVersion)).toBe(api.store.resourceVersion);
    w.close();
  });

  it("pages a LIST with limit/continue from one snapshot, and expires the token when compacted", async () => {
    for (const n of ["a", "b", "c", "d", "e"]) await create(n);
    const p1 = await call("GET", `${SVC}?limit=2`);
    expect(p1.body).toMatchObject({ kind: "ServiceList", apiVersion: "v1", metadata: { remainingItemCount: 3 } });
    expect(p1.body.items.map((i: any) => i.metadata.name)).toEqual(["a", "b"]);
    // Changes after the first page do not leak into later pages.
    await call("DELETE", `${SVC}/d`);
    await create("f");
    const p2 = await call("GET", `${SVC}?limit=2&continue=${p1.body.metadata.continue}`);
    const p3 = await call("GET", `${SVC}?limit=2&continue=${p2.body.metadata.continue}`);
    expect([...p2.body.items, ...p3.body.items].map((i: any) => i.metadata.name)).toEqual(["c", "d", "e"]);
    expect(p3.body.metadata.continue).toBeUndefined();
    expect(new Set([p1, p2, p3].map((p) => p.body.metadata.resourceVersion)).size).toBe(1);

    const p4 = await call("GET", `${SVC}?limit=2`);
    await create("g");
    api.compact(); // the snapshot's revision is gone
    const stale = await call("GET", `${SVC}?limit=2&continue=${p4.body.metadata.continue}`);
    expect(stale.status).toBe(410);
    expect(stale.body).toMatchObject({ kind: "Status", status: "Failure", reason: "Expired", code: 410 });
  });

  it("filters LIST and WATCH by label and field selectors; objects leaving the selection are DELETED for the watcher", async () => {
    await create("a", {}, { tier: "edge" });
    await create("b", {}, { tier: "core" });
    const list = await call("GET", `${SVC}?labelSelector=${encodeURIComponent("tier in (edge,x)")}`);
    expect(list.body.items.map((i: any) => i.metadata.name)).toEqual(["a"]);
    const byName = await call("GET", `/api/v1/services?fieldSelector=metadata.name%3Db`);
    expect(byName.body.items.map((i: any) => i.metadata.name)).toEqual(["b"]);
    expect((await call("GET", `${SVC}?fieldSelector=spec.nope%3Dx`)).status).toBe(400);
    await call("POST", "/api/v1/nodes", { metadata: { name: "n1" } });
    await call("POST", "/api/v1/nodes", { metadata: { name: "n2" }, spec: { unschedulable: true } });
    const schedulable = await call("GET", "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse");
    expect(schedulable.body.items.map((i: any) => i.metadata.name)).toEqual(["n1"]);

    const w = watch(`${SVC}?watch=true&labelSelector=tier%3Dedge&resourceVersion=${list.body.metadata.resourceVersion}`);
    await waitFor(() => api.watchCount === 1, "watch open");
    await call("PATCH", `${SVC}/b`, { metadata: { labels: { tier: "edge" } } }, MERGE);
    await call("PATCH", `${SVC}/a`, { metadata: { labels: { tier: "core" } } }, MERGE);
    await call("PATCH", `${SVC}/a`, { metadata: { labels: { other: "1" } } }, MERGE);
    await waitFor(() => w.events.length === 2, "two events");
    expect(w.events.map(brief)).toEqual(["ADDED b", "DELETED a"]);
    w.close();
  });

  it("replays every event after the given resourceVersion, then streams live", async () => {
    const a = await create("a");
    await call("PATCH", `${SVC}/a`, { metadata: { labels: { v: "2" } } }, MERGE);
    await create("b");
    await call("DELETE", `${SVC}/a`);
    const w = watch(`${SVC}?watch=true&resourceVersion=${a.metadata.resourceVersion}`);
    await waitFor(() => w.events.length === 3, "replayed events");
    await create("c");
    await waitFor(() => w.events.length === 4, "live event");
    expect(w.events.map(brief)).toEqual(["MODIFIED a", "ADDED b", "DELETED a", "ADDED c"]);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    expect([...rvs].sort((x, y) => x - y)).toEqual(rvs);
    // Watch objects carry kind/apiVersion; a watch from "0" starts with the current state.
    expect(w.events[0].object).toMatchObject({ kind: "Service", apiVersion: "v1" });
    const fromZero = watch(`${SVC}?watch=true&resourceVersion=0`);
    await waitFor(() => fromZero.events.length === 2, "synthetic ADDED events");
    expect(fromZero.events.map(brief)).toEqual(["ADDED b", "ADDED c"]);
    w.close();
    fromZero.close();
  });

  it("answers a compacted resourceVersion with an ERROR 410 Expired event and closes the stream", async () => {
    const a = await create("a");
    await create("b");
    api.compact();
    const w = watch(`${SVC}?watch=true&resourceVersion=${a.metadata.resourceVersion}`);
    await w.done;
    expect(w.ended()).toBe(true);
    expect(w.events).toHaveLength(1);
    expect(w.events[0]).toMatchObject({ type: "ERROR", object: { kind: "Status", status: "Failure", reason: "Expired", code: 410 } });
  });

  it("sends bookmarks only when asked and ends the stream after timeoutSeconds", async () => {
    const rv = api.store.resourceVersion;
    const plain = watch(`${SVC}?watch=true&resourceVersion=${rv}&timeoutSeconds=1`);
    const marked = watch(`${SVC}?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=1`);
    await Promise.all([plain.done, marked.done]);
    expect(plain.ended() && marked.ended()).toBe(true);
    expect(plain.events).toEqual([]);
    expect(marked.events.length).toBeGreaterThan(0);
    expect(marked.events[0]).toMatchObject({ type: "BOOKMARK", object: { kind: "Service", apiVersion: "v1", metadata: { resourceVersion: String(rv) } } });
  });
});

describe("writes", () => {
  it("refuses a PUT with a stale resourceVersion (409) and allows one without", async () => {
    const a = await create("a");
    await call("PATCH", `${SVC}/a`, { metadata: { labels: { v: "1" } } }, MERGE);
    const stale = await call("PUT", `${SVC}/a`, { ...a, metadata: { ...a.metadata, labels: { v: "stale" } } });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({
      kind: "Status",
      reason: "Conflict",
      code: 409,
      message: 'Operation cannot be fulfilled on services "a": the object has been modified; please apply your changes to the latest version and try again',
    });
    const { resourceVersion: _rv, ...meta } = a.metadata;
    const blind = await call("PUT", `${SVC}/a`, { ...a, metadata: { ...meta, labels: { v: "blind" } } });
    expect(blind.status).toBe(200);
    expect(blind.body.metadata.labels).toEqual({ v: "blind" });
  });

  it("splits the main resource from /status: each ignores the other's half", async () => {
    const a = await create("a");
    expect(a.status).toEqual({ loadBalancer: {} });
    const ingress = { loadBalancer: { ingress: [{ hostname: "a.example.com" }] } };
    const main = await call("PUT", `${SVC}/a`, { ...a, status: ingress });
    expect(main.body.status).toEqual({ loadBalancer: {} });
    const st = await call("PUT", `${SVC}/a/status`, { ...a, spec: { ...a.spec, type: "NodePort" }, status: ingress });
    expect(st.status).toBe(200);
    expect(st.body.spec.type).toBe("LoadBalancer");
    expect(st.body.status).toEqual(ingress);
    const patched = await call("PATCH", `${SVC}/a/status`, { spec: { type: "NodePort" }, status: { loadBalancer: { ingress: [{ ip: "203.0.113.7" }] } } }, MERGE);
    expect(patched.body.spec.type).toBe("LoadBalancer");
    expect(patched.body.status.loadBalancer.ingress).toEqual([{ ip: "203.0.113.7" }]);
    // generation follows spec only.
    expect(patched.body.metadata.generation).toBe(1);
    const bad = await call("PATCH", `${SVC}/a/status`, { status: { loadBalancer: { ingress: [{ hostname: "203.0.113.7" }] } } }, MERGE);
    expect(bad.status).toBe(422);
    expect(bad.body.message).toContain("must be a DNS name, not an IP address");
  });

  it("keeps an object with finalizers until the last one goes, then emits a single DELETED", async () => {
    const a = await create("a");
    await call("PATCH", `${SVC}/a`, { metadata: { finalizers: ["service.kubernetes.io/load-balancer-cleanup"] } }, MERGE);
    const w = watch(`${SVC}?watch=true&resourceVersion=${api.store.resourceVersion}`);
    await waitFor(() => api.watchCount === 1, "watch open");
    const del = await call("DELETE", `${SVC}/a`);
    expect(del.status).toBe(200);
    expect(del.body.metadata.deletionTimestamp).toBeTruthy();
    expect((await call("GET", `${SVC}/a`)).body.metadata.deletionTimestamp).toBeTruthy();
    // Deleting again changes nothing; new finalizers are refused.
    expect((await call("DELETE", `${SVC}/a`)).status).toBe(200);
    const more = await call("PATCH", `${SVC}/a`, { metadata: { finalizers: ["service.kubernetes.io/load-balancer-cleanup", "x/y"] } }, MERGE);
    expect(more.status).toBe(422);
    const rm = await call("PATCH", `${SVC}/a`, [{ op: "remove", path: "/metadata/finalizers" }], "application/json-patch+json");
    expect(rm.status).toBe(200);
    expect((await call("GET", `${SVC}/a`)).status).toBe(404);
    await waitFor(() => w.events.length === 2, "two events");
    expect(w.events.map(brief)).toEqual(["MODIFIED a", "DELETED a"]);
    expect(w.events[1].object.metadata.uid).toBe(a.metadata.uid);
    w.close();
  });

  it("applies merge, strategic-merge and JSON patches; refuses server-side apply with 415", async () => {
    await create("a", { ports: [{ name: "http", port: 80 }, { name: "https", port: 443 }] });
    const smp = await call(
      "PATCH",
      `${SVC}/a`,
      { spec: { "$setElementOrder/ports": [{ port: 443 }, { port: 8080 }], ports: [{ port: 8080, name: "alt" }, { port: 80, $patch: "delete" }] } },
      "application/strategic-merge-patch+json",
    );
    expect(smp.status).toBe(200);
    expect(smp.body.spec.ports.map((p: any) => `${p.name}:${p.port}`)).toEqual(["https:443", "alt:8080"]);
    const merge = await call("PATCH", `${SVC}/a`, { spec: { ports: [{ name: "only", port: 81 }] } }, MERGE);
    expect(merge.body.spec.ports.map((p: any) => p.port)).toEqual([81]); // merge patch replaces lists
    const jp = await call("PATCH", `${SVC}/a`, [{ op: "test", path: "/spec/ports/0/port", value: 81 }, { op: "add", path: "/metadata/labels", value: { j: "p" } }], "application/json-patch+json");
    expect(jp.body.metadata.labels).toEqual({ j: "p" });
    const failed = await call("PATCH", `${SVC}/a`, [{ op: "test", path: "/spec/ports/0/port", value: 1 }], "application/json-patch+json");
    expect(failed.status).toBe(422);
    const ssa = await call("PATCH", `${SVC}/a`, "spec: {}", "application/apply-patch+yaml");
    expect(ssa.status).toBe(415);
    expect(ssa.body).toMatchObject({ kind: "Status", reason: "UnsupportedMediaType", code: 415 });
  });

  it("drops unknown fields with a Warning header (fieldValidation=Warn), or refuses them with Strict", async () => {
    await create("a");
    const res = await fetch(`${api.url}${SVC}/a/status`, {
      method: "PATCH",
      headers: { "content-type": MERGE },
      body: JSON.stringify({ status: { loadBalancer: { ingress: [{ hostName: "typo.example.com" }] } } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("warning")).toBe('299 - "unknown field \\"status.loadBalancer.ingress[0].hostName\\""');
    expect(((await res.json()) as any).status.loadBalancer.ingress).toEqual([{}]);
    const strict = await call("POST", `${SVC}?fieldValidation=Strict`, { ...service("b"), spec: { ...service("b").spec, typo: 1 } });
    expect(strict.status).toBe(400);
    expect(strict.body.message).toBe('strict decoding error: unknown field "spec.typo"');
  });

  it("answers every error with a Status object", async () => {
    const cases = [
      [await call("GET", `${SVC}/nope`), 404, "NotFound", 'services "nope" not found'],
      [await call("POST", "/api/v1/namespaces/nowhere/services", service("x")), 404, "NotFound", 'namespaces "nowhere" not found'],
      [await call("POST", SVC, "{not json"), 400, "BadRequest", undefined],
      [await call("GET", "/api/v1/widgets"), 404, "NotFound", undefined],
      [await call("PUT", "/api/v1/nodes/nope", { metadata: { name: "nope" } }), 404, "NotFound", 'nodes "nope" not found'],
    ] as const;
    await create("dup");
    const dup = await call("POST", SVC, service("dup"));
    for (const [r, code, reason, message] of [...cases, [dup, 409, "AlreadyExists", 'services "dup" already exists'] as const]) {
      expect(r.status).toBe(code);
      expect(r.body).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", reason, code });
      if (message) expect(r.body.message).toBe(message);
    }
  });
});

describe("Services", () => {
  it("allocates NodePorts in range, keeps them when an update omits them, and refuses duplicates", async () => {
    const a = await create("a", { ports: [{ name: "http", port: 80 }, { name: "https", port: 443 }] });
    const ports = a.spec.ports.map((p: any) => p.nodePort);
    for (const p of ports) expect(p >= 30000 && p <= 32767).toBe(true);
    expect(new Set(ports).size).toBe(2);
    expect(a.spec).toMatchObject({ sessionAffinity: "None", externalTrafficPolicy: "Cluster", ipFamilies: ["IPv4"], allocateLoadBalancerNodePorts: true });
    expect(a.spec.clusterIP).toMatch(/^10\.96\./);

    // kubectl-style PUT without nodePorts keeps the allocation (matched by port name).
    const put = await call("PUT", `${SVC}/a`, service("a", { ports: [{ name: "https", port: 443 }, { name: "http", port: 8080 }] }));
    expect(put.body.spec.ports.map((p: any) => [p.name, p.nodePort])).toEqual([
      ["https", ports[1]],
      ["http", ports[0]],
    ]);
    const dup = await call("POST", SVC, service("b", { ports: [{ name: "http", port: 80, nodePort: ports[0] }] }));
    expect(dup.status).toBe(422);
    expect(dup.body).toMatchObject({ reason: "Invalid", code: 422 });
    expect(dup.body.message).toContain("provided port is already allocated");
    const out = await call("POST", SVC, service("c", { ports: [{ port: 80, nodePort: 80 }] }));
    expect(out.status).toBe(422);
    expect(out.body.message).toContain("30000-32767");
    const ip = await call("PATCH", `${SVC}/a`, { spec: { clusterIP: "10.96.99.99" } }, MERGE);
    expect(ip.status).toBe(422);
  });

  it("allocates healthCheckNodePort only for LoadBalancer + Local, and honours allocateLoadBalancerNodePorts: false", async () => {
    const local = await create("local", { externalTrafficPolicy: "Local" });
    expect(local.spec.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(local.spec.healthCheckNodePort).not.toBe(local.spec.ports[0].nodePort);
    const np = await call("POST", SVC, service("np", { type: "NodePort", externalTrafficPolicy: "Local" }));
    expect(np.body.spec.healthCheckNodePort).toBeUndefined();
    const cip = await call("POST", SVC, service("cip", { type: "ClusterIP", externalTrafficPolicy: "Local" }));
    expect(cip.status).toBe(422);

    const direct = await create("direct", { allocateLoadBalancerNodePorts: false, externalTrafficPolicy: "Local" });
    expect(direct.spec.ports[0].nodePort).toBeUndefined();
    expect(direct.spec.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    // Dropping to ClusterIP releases the ports for others.
    const down = await call("PATCH", `${SVC}/local`, { spec: { type: "ClusterIP", externalTrafficPolicy: null } }, MERGE);
    expect(down.status).toBe(200);
    expect(down.body.spec.ports[0].nodePort).toBeUndefined();
    expect(down.body.spec.healthCheckNodePort).toBeUndefined();
    const reuse = await call("POST", SVC, service("reuse", { ports: [{ name: "http", port: 80, nodePort: local.spec.ports[0].nodePort }] }));
    expect(reuse.status).toBe(201);
  });
});

describe("time fields", () => {
  it("stores metav1.Time in UTC whole seconds and MicroTime in UTC with 6 digits, refusing malformed times", async () => {
    const ev = await call("POST", "/api/v1/namespaces/default/events", {
      metadata: { name: "web.1" },
      involvedObject: { kind: "Service", namespace: "default", name: "web" },
      reason: "EnsuredLoadBalancer",
      message: "ok",
      type: "Normal",
      firstTimestamp: "2026-11-26T10:00:00.987Z",
      lastTimestamp: "2026-11-26T12:30:05+02:00",
    });
    expect(ev.status).toBe(201);
    expect([ev.body.firstTimestamp, ev.body.lastTimestamp]).toEqual(["2026-11-26T10:00:00Z", "2026-11-26T10:30:05Z"]);
    const lease = await call("POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", {
      metadata: { name: "l" },
      spec: { renewTime: "2026-11-26T12:00:00.123456+01:00" },
    });
    expect(lease.body.spec.renewTime).toBe("2026-11-26T11:00:00.123456Z");
    const bad = await call("PATCH", "/apis/coordination.k8s.io/v1/namespaces/default/leases/l", { spec: { renewTime: "yesterday" } }, MERGE);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ kind: "Status", reason: "BadRequest" });
  });
});

describe("Events", () => {
  it("serves events.k8s.io/v1 and core v1 Events from one storage, converting fields", async () => {
    const w = watch(`/apis/events.k8s.io/v1/namespaces/default/events?watch=true&resourceVersion=${api.store.resourceVersion}`);
    await waitFor(() => api.watchCount === 1, "watch open");
    const created = await call("POST", "/apis/events.k8s.io/v1/namespaces/default/events", {
      metadata: { generateName: "web." },
      eventTime: "2026-11-26T10:00:00.000000Z",
      reportingController: "edgelb.dev/sync-agent",
      reportingInstance: "agent-0",
      action: "Ensuring",
      reason: "EnsuringLoadBalancer",
      regarding: { kind: "Service", namespace: "default", name: "web" },
      note: "Ensuring load balancer",
      type: "Normal",
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ apiVersion: "events.k8s.io/v1", kind: "Event", note: "Ensuring load balancer" });
    const core = await call("GET", `/api/v1/namespaces/default/events/${created.body.metadata.name}`);
    expect(core.body).toMatchObject({
      apiVersion: "v1",
      kind: "Event",
      message: "Ensuring load balancer",
      involvedObject: { kind: "Service", name: "web" },
      reportingComponent: "edgelb.dev/sync-agent",
    });
    expect(core.body.note).toBeUndefined();

    await call("POST", "/api/v1/namespaces/default/events", {
      metadata: { name: "legacy" },
      involvedObject: { kind: "Service", namespace: "default", name: "web" },
      reason: "EnsuredLoadBalancer",
      message: "Ensured",
      type: "Normal",
      count: 2,
    });
    await waitFor(() => w.events.length === 2, "both events on the events.k8s.io watch");
    expect(w.events[1]).toMatchObject({ type: "ADDED", object: { apiVersion: "events.k8s.io/v1", note: "Ensured", deprecatedCount: 2, regarding: { name: "web" } } });
    const byRegarding = await call("GET", "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=reason%3DEnsuredLoadBalancer");
    expect(byRegarding.body.items.map((e: any) => e.metadata.name)).toEqual(["legacy"]);
    w.close();
  });
});

describe("client-node typed clients", () => {
  it("rejects a Lease whose MicroTime has 3 fractional digits, like the real server; V1MicroTime works", async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromString(kubeconfigYaml({ server: api.url }));
    const coord = kc.makeApiClient(k8s.CoordinationV1Api);
    const lease = (t: Date) => ({ metadata: { name: "edgelb" }, spec: { holderIdentity: "me", leaseDurationSeconds: 15, renewTime: t } });
    const err = await coord.createNamespacedLease({ namespace: "edgelb", body: lease(new Date()) }).catch((e) => e);
    expect(err.code).toBe(400);
    expect(String(err.body)).toContain(".000000");
    const ok = await coord.createNamespacedLease({ namespace: "edgelb", body: lease(new k8s.V1MicroTime()) });
    expect(ok.metadata?.resourceVersion).toBeTruthy();
    // A stale replace is a 409, which leader election relies on.
    await coord.replaceNamespacedLease({ name: "edgelb", namespace: "edgelb", body: { ...ok, spec: { ...ok.spec, holderIdentity: "me-again" } } });
    const conflict = await coord.replaceNamespacedLease({ name: "edgelb", namespace: "edgelb", body: { ...ok, spec: { ...ok.spec, holderIdentity: "other" } } }).catch((e) => e);
    expect(conflict.code).toBe(409);
  });
});

describe("fault hooks", () => {
  it("injects errors, latency and resets per method and path, and logs every request", async () => {
    const removeErr = api.inject({ method: "GET", path: /\/services$/, status: 429, retryAfterSeconds: 1, times: 1 });
    const throttled = await fetch(`${api.url}${SVC}`);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get("retry-after")).toBe("1");
    expect(await throttled.json()).toMatchObject({ kind: "Status", reason: "TooManyRequests", code: 429, details: { retryAfterSeconds: 1 } });
    expect((await call("GET", SVC)).status).toBe(200); // times: 1
    removeErr();

    api.inject({ method: "POST", path: /\/services$/, delayMs: 150 });
    const t0 = Date.now();
    await create("slow");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    api.clearInjections();

    // A hung request proceeds as soon as the fault is cleared.
    api.inject({ method: "GET", path: /\/services\/slow$/, delayMs: 60_000 });
    const hung = call("GET", `${SVC}/slow`);
    await waitFor(() => api.delayedRequests === 1, "the request to hang");
    api.clearInjections();
    expect((await hung).status).toBe(200);

    api.inject({ path: /\/services\/slow$/, reset: true, times: 1 });
    await expect(fetch(`${api.url}${SVC}/slow`)).rejects.toThrow();
    expect((await call("GET", `${SVC}/slow`)).status).toBe(200);

    expect(api.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      `GET ${SVC} 429`,
      `GET ${SVC} 200`,
      `POST ${SVC} 201`,
      `GET ${SVC}/slow 200`,
      `GET ${SVC}/slow 0`,
      `GET ${SVC}/slow 200`,
    ]);
  });

  it("deletes a namespace with its content, and refuses new content while it terminates", async () => {
    await call("POST", "/api/v1/namespaces", { metadata: { name: "team" } });
    await call("POST", "/api/v1/namespaces/team/services", service("x"));
    await call("POST", "/api/v1/namespaces/team/services", service("held"));
    await call("PATCH", "/api/v1/namespaces/team/services/held", { metadata: { finalizers: ["x.io/hold"] } }, MERGE);
    await call("DELETE", "/api/v1/namespaces/team");
    expect((await call("GET", "/api/v1/namespaces/team")).body.status.phase).toBe("Terminating");
    expect((await call("POST", "/api/v1/namespaces/team/services", service("y"))).status).toBe(403);
    // The namespace controller removes the content asynchronously, as on a real cluster: a client's own DELETE
    // meanwhile works, or finds it already gone (on busy cores the controller can be first).
    expect([200, 404]).toContain((await call("DELETE", "/api/v1/namespaces/team/services/x")).status);
    await waitFor(async () => (await call("GET", "/api/v1/namespaces/team/services/x")).status === 404, "x to be gone");
    await waitFor(async () => (await call("GET", "/api/v1/namespaces/team/services/held")).body.metadata?.deletionTimestamp, "held to be deleting");
    await call("PATCH", "/api/v1/namespaces/team/services/held", { metadata: { finalizers: null } }, MERGE);
    expect((await call("GET", "/api/v1/namespaces/team")).status).toBe(404);
  });
});
