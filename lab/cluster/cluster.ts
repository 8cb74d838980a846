/**
 * A whole simulated cluster in one process: the fake Kubernetes API server
 * (lab/cluster/api/) plus N simulated nodes (sim-node.ts), wired together the
 * way kube-proxy and the endpoint controllers wire a real one.
 *
 *   import { startCluster } from "../../test/lab/cluster/cluster.ts";
 *   const cluster = await startCluster({ nodes: 3, addressBase: "127.0.7", firstHost: 11, healthzPort: 0 });
 *   cluster.api.url            // http://127.0.0.1:<port>  (plain http)
 *   cluster.kubeconfigPath     // kubeconfig for kubectl / KubeConfig.loadFromFile (token, insecure-skip-tls-verify)
 *   cluster.token              // a wrong token is 401; no token is served unless { anonymous: false }
 *                              // (kubectl never sends credentials over plain http; client-node does)
 *   cluster.nodes              // SimNode[]: node-1 on 127.0.7.11, node-2 on 127.0.7.12, ...
 *   cluster.node("node-2")     // one SimNode (setBehavior, setHealthy, stop, ...)
 *   cluster.healthzPort        // kube-proxy healthz port, the same on every node
 *
 * Objects (in-process, synchronous, same semantics as over HTTP: allocation,
 * validation, 409s, finalizers, one event per real change):
 *   cluster.create(obj)                          // by apiVersion/kind; namespace from metadata (default "default")
 *   cluster.get("Service", "web", "default")
 *   cluster.list("Service", "default")
 *   cluster.update(obj) / cluster.updateStatus(obj)
 *   cluster.patch("Service", "web", { metadata: { labels: { a: "b" } } }, { namespace, status?: true })  // merge patch
 *   cluster.delete("Service", "web", "default")
 *   cluster.store               // the Store itself (resource-typed API)
 *
 * Like a real cluster it starts with namespaces default, kube-system, kube-public,
 * kube-node-lease and edgelb, and the ClusterIP Service default/kubernetes.
 *
 * The simulator (level-triggered from the store):
 *   - every Node object the cluster created has InternalIP = the node's loopback address;
 *   - every TCP NodePort of every Service is served on every node (and unserved when gone);
 *   - kube-proxy's /healthz on a node answers 503 (nodeEligible: false) while its Node is
 *     being deleted or tainted ToBeDeletedByClusterAutoscaler, as kube-proxy >= 1.28 does;
 *     node.setHealthy(false) makes it 503 regardless;
 *   - for Services with a healthCheckNodePort, each node answers it like kube-proxy
 *     with the number of ready local endpoints (from EndpointSlices) or 503;
 *   - await cluster.placePods({ namespace, name }, ["node-1", "node-1", "node-3"], { ready })
 *     replaces the Service's pods (Pod objects with nodeName, podIP, Ready), writes its
 *     EndpointSlice (one endpoint per pod, nodeName set) and v1 Endpoints, and waits until
 *     the nodes answer accordingly; placePods(svc, []) empties it;
 *   - await cluster.settled() waits until nodes reflect the store (after direct writes).
 *   - apps/v1 Deployments work as on a real cluster (lab/cluster/workloads/): ReplicaSets,
 *     pods spread over schedulable nodes, Ready after podStartupMs, terminating ones serving
 *     for podDrainMs, EndpointSlices from selectors; each NodePort then forwards like
 *     kube-proxy to those pods (echo app with pod/node/version; `kubectl logs`), refuses
 *     connections when none serves, and with externalTrafficPolicy: Local drops them (no
 *     answer: a connect timeout) on a node without a local one. A Service no workload's pods
 *     ever matched keeps the stand-in above (every node answers; placePods places pods).
 *   - await cluster.addNode() / cluster.removeNode("node-3"): node process + Node object;
 *     cluster.setNodeReady("node-2", false) flips the Node's Ready condition.
 *
 * Fault hooks are on the API server (lab/cluster/api/server.ts): cluster.api.closeWatches(),
 * resetWatches(), compact(rv?), stop({ graceful? }) / listen() (same port, state kept),
 * inject({ method, path, watch, status, retryAfterSeconds, delayMs, reset, times }) -> remove(),
 * clearInjections(), delayedRequests, watchCount, requests (the request log: method, path,
 * query, watch, status, auth). ApiServer options: minRequestTimeoutSeconds (server-side watch
 * timeouts), bookmarkIntervalMs.
 *
 * await cluster.stop() closes every listener and socket; nothing is left running.
 */
import { randomBytes } from "node:crypto";
import { removeKubeconfig, writeKubeconfig } from "./api/kubeconfig.ts";
import { ENDPOINT_SLICES, ENDPOINTS, NODES, PODS, RESOURCES, SERVICES, apiVersionOf, type ResourceType } from "./api/resources.ts";
import type { Obj } from "./api/selectors.ts";
import { ApiServer } from "./api/server.ts";
import type { NodePortRange } from "./api/service.ts";
import type { Store } from "./api/store.ts";
import { SimNode, type PodEndpoint, type PortRoute } from "./sim-node.ts";
import { SIM_SLICE } from "./workloads/plan.ts";
import { versionOf, Workloads } from "./workloads/index.ts";

export interface ClusterOptions {
  /** How many nodes to start (default 3). */
  nodes?: number;
  /** First three octets of the nodes' loopback addresses (default "127.0.0"). Use your own per test file. */
  addressBase?: string;
  /** Host part of the first node's address (default 11). */
  firstHost?: number;
  /** Node names are `${namePrefix}${i}` starting at 1 (default "node-"). */
  namePrefix?: string;
  /** kube-proxy healthz port on every node (default 10256; 0 = pick one free port shared by all). */
  healthzPort?: number;
  /** API server port (default 0 = pick) and host (default 127.0.0.1). */
  apiPort?: number;
  apiHost?: string;
  /** Bearer token for the kubeconfig (default: random); a wrong token gets 401. */
  token?: string;
  /** Serve requests without credentials (default true: kubectl sends none over plain http). */
  anonymous?: boolean;
  /** Where to write the kubeconfig (default: a temp dir removed on stop). */
  kubeconfigPath?: string;
  kubeletVersion?: string;
  nodePortRange?: NodePortRange;
  bookmarkIntervalMs?: number;
  /** Server-side watch timeouts in [t, 2t] seconds, like --min-request-timeout (default: none). */
  minRequestTimeoutSeconds?: number;
  /** Create default/kubernetes (ClusterIP 10.96.0.1:443) like every real cluster has (default true). */
  kubernetesService?: boolean;
  /** How long a Deployment's new pod takes to become Ready (default 500 ms). */
  podStartupMs?: number;
  /** How long a terminating pod keeps serving before it exits (default 2 s, capped by its grace period). */
  podDrainMs?: number;
  /**
   * Keep the stand-in app for Services with a selector that no pod matches
   * (every node answers for them): for suites that test the agent and need
   * Services, not pods. Default false: their NodePorts refuse, as on a real
   * cluster. Services without a selector, with the sim.edgelb.dev/pods
   * annotation or with pods from placePods() use the stand-in either way.
   */
  standIn?: boolean;
  /**
   * For pods placed by placePods() (the stand-in answers for them): with
   * externalTrafficPolicy: Local, a node without one of them drops new
   * connections, like kube-proxy (the convergence simulation). Default false:
   * every node answers, as the agent's suites expect.
   */
  placedLocalDrops?: boolean;
}

export interface ServiceRef {
  namespace?: string;
  name: string;
}

export interface PlacePodsOptions {
  /** Endpoint readiness (default true). */
  ready?: boolean;
}

function kindToResource(kind: string, apiVersion?: string): ResourceType {
  const matches = RESOURCES.filter((r) => r.kind === kind || r.plural === kind);
  const r = apiVersion ? matches.find((x) => apiVersionOf(x) === apiVersion) : matches[0];
  if (!r) throw new Error(`the simulated cluster does not serve ${apiVersion ?? ""} ${kind}`);
  return r;
}

export class SimCluster {
  readonly nodes: SimNode[] = [];
  private readonly queue: { running: Promise<void>; dirty: boolean; busy: boolean } = { running: Promise.resolve(), dirty: false, busy: false };
  private unsubscribe: () => void = () => {};
  private nextHost: number;
  private nextIndex = 1;
  private podIp = 1;
  private stopped = false;
  private failures: unknown[] = [];
  /** Deployment, ReplicaSet and EndpointSlice controllers, kubelets: lab/cluster/workloads/. */
  workloads!: Workloads;

  private constructor(
    readonly api: ApiServer,
    readonly token: string,
    readonly kubeconfigPath: string,
    private readonly ownsKubeconfig: boolean,
    readonly healthzPort: number,
    private readonly opts: Required<Pick<ClusterOptions, "addressBase" | "firstHost" | "namePrefix" | "kubeletVersion">>,
  ) {
    this.nextHost = opts.firstHost;
  }

  static async start(opts: ClusterOptions = {}): Promise<SimCluster> {
    const token = opts.token ?? randomBytes(16).toString("hex");
    const api = await ApiServer.start({
      host: opts.apiHost ?? "127.0.0.1",
      port: opts.apiPort ?? 0,
      token,
      anonymous: opts.anonymous ?? true,
      ...(opts.nodePortRange ? { nodePortRange: opts.nodePortRange } : {}),
      ...(opts.bookmarkIntervalMs ? { bookmarkIntervalMs: opts.bookmarkIntervalMs } : {}),
      ...(opts.minRequestTimeoutSeconds ? { minRequestTimeoutSeconds: opts.minRequestTimeoutSeconds } : {}),
      podTermination: true,
    });
    if (opts.kubernetesService ?? true) {
      api.store.create(SERVICES, "default", {
        metadata: { name: "kubernetes", labels: { component: "apiserver", provider: "kubernetes" } },
        spec: { type: "ClusterIP", clusterIP: "10.96.0.1", ports: [{ name: "https", port: 443, targetPort: 6443 }] },
      });
    }
    const kubeconfigPath = writeKubeconfig({ server: api.url, token, ...(opts.kubeconfigPath ? { path: opts.kubeconfigPath } : {}) });
    const settings = {
      addressBase: opts.addressBase ?? "127.0.0",
      firstHost: opts.firstHost ?? 11,
      namePrefix: opts.namePrefix ?? "node-",
      kubeletVersion: opts.kubeletVersion ?? "v1.32.4",
    };
    let cluster: SimCluster | undefined;
    try {
      // All nodes share one healthz port, like kube-proxy's fixed 10256.
      let healthzPort = opts.healthzPort ?? 10256;
      const count = opts.nodes ?? 3;
      const first = count > 0 ? await SimNode.start({ name: `${settings.namePrefix}1`, address: `${settings.addressBase}.${settings.firstHost}`, healthzPort }) : undefined;
      if (first) healthzPort = first.healthzPort;
      cluster = new SimCluster(api, token, kubeconfigPath, !opts.kubeconfigPath, healthzPort, settings);
      cluster.placedLocalDrops = opts.placedLocalDrops ?? false;
      const c = cluster;
      c.workloads = new Workloads(api.store, {
        ...(opts.podStartupMs !== undefined ? { podStartupMs: opts.podStartupMs } : {}),
        ...(opts.podDrainMs !== undefined ? { podDrainMs: opts.podDrainMs } : {}),
        ...(opts.standIn ? { standIn: true } : {}),
        allocateIp: () => c.allocatePodIp(),
        hostIp: (name) => c.nodes.find((n) => n.name === name)?.address,
      });
      api.podLogs = (ns, pod, o) => c.workloads.podLog(ns, pod, o.tailLines);
      if (first) first.onServedBy((ep, line) => c.workloads.log(ep.namespace, ep.pod, line));
      cluster.unsubscribe = api.store.subscribe((e) => {
        if (e.resource === SERVICES || e.resource === ENDPOINT_SLICES || e.resource === NODES) cluster!.kick();
      });
      if (first) await cluster.adopt(first);
      for (let i = 1; i < count; i++) await cluster.addNode();
      await cluster.settled();
      return cluster;
    } catch (e) {
      if (cluster) await cluster.stop();
      else await api.stop();
      throw e;
    }
  }

  get url(): string {
    return this.api.url;
  }

  get store(): Store {
    return this.api.store;
  }

  node(name: string): SimNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no simulated node ${name}`);
    return n;
  }

  // ---- nodes ----

  private nodeObject(node: SimNode): Obj {
    return {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: node.name,
        labels: {
          "kubernetes.io/hostname": node.name,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
        },
      },
      spec: {},
      status: {
        addresses: [
          { type: "InternalIP", address: node.address },
          { type: "Hostname", address: node.name },
        ],
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "kubelet is posting ready status",
            lastHeartbeatTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
            lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          },
        ],
        capacity: { cpu: "4", memory: "8152720Ki", pods: "110", "ephemeral-storage": "61202244Ki" },
        allocatable: { cpu: "4", memory: "8050320Ki", pods: "110", "ephemeral-storage": "56403987978" },
        daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
        nodeInfo: {
          kubeletVersion: this.opts.kubeletVersion,
          kubeProxyVersion: this.opts.kubeletVersion,
          osImage: "edgelb simulated node",
          kernelVersion: "sim",
          containerRuntimeVersion: "sim://1.0",
          operatingSystem: "linux",
          architecture: "amd64",
        },
      },
    };
  }

  private async adopt(node: SimNode): Promise<void> {
    this.nodes.push(node);
    this.nextIndex = Math.max(this.nextIndex, this.nodes.length + 1);
    this.nextHost = Math.max(this.nextHost, Number(node.address.split(".").pop()) + 1);
    if (!this.store.tryGet(NODES, "", node.name)) this.store.create(NODES, "", this.nodeObject(node));
    this.kick();
    await this.settled();
  }

  /** Starts one more node (next name, next address) and registers its Node object. */
  async addNode(opts: { name?: string; address?: string } = {}): Promise<SimNode> {
    const name = opts.name ?? `${this.opts.namePrefix}${this.nextIndex}`;
    const address = opts.address ?? `${this.opts.addressBase}.${this.nextHost}`;
    const node = await SimNode.start({ name, address, healthzPort: this.healthzPort, onServed: (ep, line) => this.workloads.log(ep.namespace, ep.pod, line) });
    await this.adopt(node);
    return node;
  }

  /** Stops a node's listeners and deletes its Node object (like a node leaving the cluster). */
  async removeNode(name: string): Promise<void> {
    const node = this.node(name);
    this.nodes.splice(this.nodes.indexOf(node), 1);
    // A reconcile already running may still open listeners on it: let it finish first.
    await this.queue.running.catch(() => {});
    await node.stop();
    if (this.store.tryGet(NODES, "", name)) this.store.delete(NODES, "", name);
  }

  /** Flips the Node's Ready condition through /status, as the node lifecycle controller would. */
  setNodeReady(name: string, ready: boolean): Obj {
    return this.store.mutate(
      NODES,
      "",
      name,
      (n) => {
        const c = (n.status.conditions ?? []).find((x: Obj) => x.type === "Ready");
        const status = ready ? "True" : "Unknown";
        if (c && c.status !== status) {
          c.status = status;
          c.reason = ready ? "KubeletReady" : "NodeStatusUnknown";
          c.lastTransitionTime = new Date().toISOString().replace(/\.\d+Z$/, "Z");
        }
      },
      { subresource: "status" },
    );
  }

  // ---- objects ----

  create(obj: Obj): Obj {
    const r = kindToResource(obj.kind, obj.apiVersion);
    return this.store.create(r, obj.metadata?.namespace ?? "default", obj);
  }

  get(kind: string, name: string, namespace = "default"): Obj {
    return this.store.get(kindToResource(kind), namespace, name);
  }

  tryGet(kind: string, name: string, namespace = "default"): Obj | undefined {
    return this.store.tryGet(kindToResource(kind), namespace, name);
  }

  list(kind: string, namespace?: string): Obj[] {
    return this.store.list(kindToResource(kind), namespace).items.map((o) => structuredClone(o));
  }

  update(obj: Obj): Obj {
    const r = kindToResource(obj.kind, obj.apiVersion);
    return this.store.update(r, obj.metadata?.namespace ?? "default", obj.metadata.name, obj);
  }

  updateStatus(obj: Obj): Obj {
    const r = kindToResource(obj.kind, obj.apiVersion);
    return this.store.update(r, obj.metadata?.namespace ?? "default", obj.metadata.name, obj, { subresource: "status" });
  }

  patch(kind: string, name: string, patch: Obj, opts: { namespace?: string; status?: boolean; type?: string } = {}): Obj {
    return this.store.patch(kindToResource(kind), opts.namespace ?? "default", name, opts.type ?? "application/merge-patch+json", patch, opts.status ? { subresource: "status" } : {});
  }

  delete(kind: string, name: string, namespace = "default"): Obj {
    return this.store.delete(kindToResource(kind), namespace, name);
  }

  // ---- pods and endpoints ----

  /**
   * Places one ready (or not) "pod" per entry of `nodeNames` behind a Service,
   * replacing the pods placed for it before, and writes what the endpoint
   * controllers would: the Service's EndpointSlice (and v1 Endpoints). Pod
   * objects exist so `kubectl get pods -o wide` and `describe node` show them;
   * nothing runs in them: the node's NodePort app answers for every pod.
   */
  async placePods(service: ServiceRef | string, nodeNames: string[], opts: PlacePodsOptions = {}): Promise<Obj> {
    const ref = typeof service === "string" ? { name: service } : service;
    const namespace = ref.namespace ?? "default";
    const svc = this.store.get(SERVICES, namespace, ref.name);
    const ready = opts.ready ?? true;
    const owner = "edgelb.sim/service";
    for (const p of this.store.list(PODS, namespace).items) {
      if (p.metadata.labels?.[owner] === ref.name) this.store.delete(PODS, namespace, p.metadata.name, { gracePeriodSeconds: 0 });
    }
    // The endpoint controllers always write the port name, "" when unnamed
    // (kubectl describe dereferences it).
    const ports = (svc.spec?.ports ?? []).map((p: Obj) => ({
      name: p.name ?? "",
      port: typeof p.targetPort === "number" ? p.targetPort : p.port,
      protocol: p.protocol ?? "TCP",
    }));
    const stamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const pods = nodeNames.map((nodeName) => {
      const ip = this.allocatePodIp();
      const pod = this.store.create(PODS, namespace, {
        metadata: { name: `${ref.name}-${randomBytes(3).toString("hex")}`, labels: { ...svc.spec?.selector, [owner]: ref.name } },
        spec: { nodeName, containers: [{ name: "app", image: "edgelb/sim-app:1", ports: ports.map((p: Obj) => ({ containerPort: p.port, protocol: p.protocol })) }] },
      });
      const cond = (type: string, status: boolean) => ({ type, status: status ? "True" : "False", lastTransitionTime: stamp });
      pod.status = {
        phase: "Running",
        podIP: ip,
        podIPs: [{ ip }],
        hostIP: this.nodes.find((x) => x.name === nodeName)?.address,
        startTime: stamp,
        qosClass: "BestEffort",
        conditions: [cond("PodScheduled", true), cond("Initialized", true), cond("ContainersReady", ready), cond("Ready", ready)],
        containerStatuses: [{ name: "app", image: "edgelb/sim-app:1", imageID: "", ready, started: true, restartCount: 0, state: { running: { startedAt: stamp } } }],
      };
      return this.store.update(PODS, namespace, pod.metadata.name, pod, { subresource: "status" });
    });

    const targetRef = (p: Obj) => ({ kind: "Pod", namespace, name: p.metadata.name, uid: p.metadata.uid });
    const sliceName = `${ref.name}-sim`;
    const slice = {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: sliceName,
        namespace,
        labels: {
          "kubernetes.io/service-name": ref.name,
          "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        },
        ownerReferences: [{ apiVersion: "v1", kind: "Service", name: ref.name, uid: svc.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      addressType: "IPv4",
      endpoints: pods.map((p) => ({
        addresses: [p.status.podIP],
        conditions: { ready, serving: ready, terminating: false },
        nodeName: p.spec.nodeName,
        targetRef: targetRef(p),
      })),
      ports,
    };
    const addresses = pods.map((p) => ({ ip: p.status.podIP, nodeName: p.spec.nodeName, targetRef: targetRef(p) }));
    const endpoints = {
      metadata: { name: ref.name, namespace, labels: { ...svc.metadata.labels } },
      subsets: pods.length ? [{ ...(ready ? { addresses } : { notReadyAddresses: addresses }), ports }] : [],
    };
    this.store.update(ENDPOINTS, namespace, ref.name, endpoints);
    const existing = this.store.tryGet(ENDPOINT_SLICES, namespace, sliceName);
    const out = existing
      ? this.store.update(ENDPOINT_SLICES, namespace, sliceName, slice)
      : this.store.create(ENDPOINT_SLICES, namespace, slice);
    await this.settled();
    return out;
  }

  /** The next pod IP (10.244.0.0/16). */
  allocatePodIp(): string {
    const n = this.podIp++;
    return `10.244.${Math.floor(n / 250) % 250}.${(n % 250) + 2}`;
  }

  // ---- the node-side simulator (kube-proxy's view of the store) ----

  private kick(): void {
    this.queue.dirty = true;
    if (this.queue.busy || this.stopped) return;
    this.queue.busy = true;
    this.queue.running = (async () => {
      try {
        while (this.queue.dirty && !this.stopped) {
          this.queue.dirty = false;
          await this.reconcile();
        }
      } finally {
        this.queue.busy = false;
      }
    })();
  }

  /** Resolves once every node serves what the store says (NodePorts, health-check ports). */
  async settled(): Promise<void> {
    await this.workloads?.settled();
    while (this.queue.busy || this.queue.dirty) {
      if (!this.queue.busy) this.kick();
      await this.queue.running;
    }
    if (this.failures.length) {
      const f = this.failures.splice(0);
      throw new Error(`simulated nodes could not apply the store: ${f.map(String).join("; ")}`);
    }
  }

  private async reconcile(): Promise<void> {
    const services = this.store.list(SERVICES).items;
    const slices = this.store.list(ENDPOINT_SLICES).items;
    const nodePorts = new Set<number>();
    const hc = new Map<number, Obj>(); // healthCheckNodePort -> Service
    for (const s of services) {
      for (const p of s.spec?.ports ?? []) if (p.nodePort && (p.protocol ?? "TCP") === "TCP") nodePorts.add(p.nodePort);
      if (s.spec?.healthCheckNodePort) hc.set(s.spec.healthCheckNodePort, s);
    }
    const nodeObjects = new Map(this.store.list(NODES).items.map((n) => [n.metadata.name, n]));
    const eligible = (name: string) => {
      const n = nodeObjects.get(name);
      return !n || (!n.metadata.deletionTimestamp && !(n.spec?.taints ?? []).some((t: Obj) => t.key === "ToBeDeletedByClusterAutoscaler"));
    };
    // kube-proxy's choice per node for Services the endpoint controller manages:
    // ready endpoints (only local ones for Local), else serving-and-terminating
    // ones (KEP-1669); none: the NodePort refuses connections (REJECT), except
    // for Local with endpoints only on other nodes: it drops them (DROP, "has
    // no local endpoints"), so a stale load balancer waits its connect timeout.
    const managed = new Map<string, Obj>();
    for (const sl of slices) if (sl.metadata.labels?.[SIM_SLICE]) managed.set(`${sl.metadata.namespace}/${sl.metadata.labels["kubernetes.io/service-name"]}`, sl);
    const pods = new Map(managed.size ? this.store.list(PODS).items.map((p) => [p.metadata.uid, p]) : []);
    const routed = new Map<number, { policy: string; endpoints: (PodEndpoint & { ready: boolean; serving: boolean })[] }>();
    for (const s of services) {
      const slice = managed.get(`${s.metadata.namespace}/${s.metadata.name}`);
      if (!slice) continue;
      const endpoints = ((slice.endpoints ?? []) as Obj[]).map((e) => {
        const pod = pods.get(e.targetRef?.uid);
        return {
          namespace: s.metadata.namespace,
          pod: e.targetRef?.name ?? "",
          node: e.nodeName ?? "",
          ip: e.addresses?.[0] ?? "",
          version: pod ? versionOf(pod) : "",
          ready: e.conditions?.ready !== false,
          serving: e.conditions?.serving !== false,
        };
      });
      for (const p of s.spec?.ports ?? []) if (p.nodePort) routed.set(p.nodePort, { policy: s.spec?.externalTrafficPolicy ?? "Cluster", endpoints });
    }
    const routeFor = (port: number, node: string): PortRoute => {
      const r = routed.get(port)!;
      const scope = r.policy === "Local" ? r.endpoints.filter((e) => e.node === node) : r.endpoints;
      const ready = scope.filter((e) => e.ready);
      const chosen = ready.length ? ready : scope.filter((e) => e.serving);
      const elsewhere = r.policy === "Local" && chosen.length === 0 && r.endpoints.some((e) => e.ready || e.serving);
      return { endpoints: chosen.map(({ ready: _r, serving: _s, ...e }) => e), ...(elsewhere ? { drop: true } : {}) };
    };
    // A Local Service the stand-in answers for (pods from placePods(), or
    // written slices): kube-proxy's DROP on the nodes without a usable local
    // endpoint while some node has one; with none anywhere the stand-in stays.
    const standInLocal = new Map<number, Set<string>>(); // NodePort -> nodes with a local endpoint
    for (const s of this.placedLocalDrops ? services : []) {
      if (s.spec?.externalTrafficPolicy !== "Local" || managed.has(`${s.metadata.namespace}/${s.metadata.name}`)) continue;
      const usable = slices
        .filter((sl) => sl.metadata.namespace === s.metadata.namespace && sl.metadata.labels?.["kubernetes.io/service-name"] === s.metadata.name)
        .flatMap((sl) => (sl.endpoints ?? []) as Obj[])
        .filter((e) => e.nodeName && (e.conditions?.ready !== false || e.conditions?.serving === true));
      if (usable.length === 0) continue;
      for (const p of s.spec?.ports ?? []) if (p.nodePort) standInLocal.set(p.nodePort, new Set(usable.map((e) => e.nodeName as string)));
    }
    const localReady = (svc: Obj, node: string) =>
      slices
        .filter((sl) => sl.metadata.namespace === svc.metadata.namespace && sl.metadata.labels?.["kubernetes.io/service-name"] === svc.metadata.name)
        .flatMap((sl) => sl.endpoints ?? [])
        .filter((e: Obj) => e.nodeName === node && e.conditions?.ready !== false).length;

    await Promise.all(
      this.nodes.map(async (node) => {
        node.setEligible(eligible(node.name));
        const served = new Set(node.servedPorts());
        const work: Promise<unknown>[] = [];
        for (const p of nodePorts) {
          const route: PortRoute | undefined = routed.has(p)
            ? routeFor(p, node.name)
            : standInLocal.get(p)?.has(node.name) === false
              ? { endpoints: [], drop: true }
              : undefined;
          const same = JSON.stringify(route) === JSON.stringify(node.route(p));
          if (!served.has(p)) work.push(node.setRoute(p, route).then(() => node.servePort(p)));
          else if (!same) work.push(node.setRoute(p, route));
        }
        for (const p of served) if (!nodePorts.has(p)) work.push(node.unservePort(p));
        for (const [port, svc] of hc) work.push(node.setLocalEndpoints(port, localReady(svc, node.name), { namespace: svc.metadata.namespace, name: svc.metadata.name }));
        for (const port of this.hcPortsOf(node)) if (!hc.has(port)) work.push(node.removeHealthCheckPort(port));
        const results = await Promise.allSettled(work);
        for (const r of results) if (r.status === "rejected") this.failures.push(`${node.name}: ${String(r.reason)}`);
        this.hcServed.set(node, new Set(hc.keys()));
      }),
    );
  }

  /** See ClusterOptions.placedLocalDrops. */
  placedLocalDrops = false;
  private readonly hcServed = new Map<SimNode, Set<number>>();
  private hcPortsOf(node: SimNode): number[] {
    return [...(this.hcServed.get(node) ?? [])];
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe();
    await this.workloads?.stop();
    await this.queue.running.catch(() => {});
    await Promise.all(this.nodes.splice(0).map((n) => n.stop()));
    await this.api.stop();
    if (this.ownsKubeconfig) removeKubeconfig(this.kubeconfigPath);
  }
}

export function startCluster(opts: ClusterOptions = {}): Promise<SimCluster> {
  return SimCluster.start(opts);
}
