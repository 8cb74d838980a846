// Realistic cluster objects for the scale and churn benches (and the agent's
// strip tests): a Node the way a kubelet on a real cluster writes it, ~15 KB
// of JSON — 6 managedFields entries, 30 status.images, 11 conditions,
// capacity, allocatable, nodeInfo, labels and annotations — of which the agent
// reads a few hundred bytes. Deterministic: the same index gives the same Node.

const KUBELET_VERSION = "v1.32.4";

function hex(i: number, len: number): string {
  let s = "";
  let x = (i * 2654435761) >>> 0;
  while (s.length < len) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += x.toString(16).padStart(8, "0");
  }
  return s.slice(0, len);
}

const IMAGES = [
  "registry.k8s.io/kube-proxy", "registry.k8s.io/pause", "registry.k8s.io/coredns/coredns", "docker.io/calico/node",
  "docker.io/calico/cni", "docker.io/calico/kube-controllers", "quay.io/prometheus/node-exporter", "quay.io/prometheus/prometheus",
  "registry.k8s.io/ingress-nginx/controller", "registry.k8s.io/metrics-server/metrics-server", "docker.io/library/nginx",
  "docker.io/library/redis", "docker.io/library/postgres", "ghcr.io/fluxcd/source-controller", "ghcr.io/fluxcd/kustomize-controller",
  "quay.io/jetstack/cert-manager-controller", "quay.io/jetstack/cert-manager-webhook", "quay.io/jetstack/cert-manager-cainjector",
  "docker.io/grafana/grafana", "docker.io/grafana/loki", "docker.io/grafana/promtail", "quay.io/cilium/cilium",
  "quay.io/cilium/operator-generic", "registry.k8s.io/csi-secrets-store/driver", "registry.k8s.io/sig-storage/csi-node-driver-registrar",
  "registry.k8s.io/sig-storage/livenessprobe", "docker.io/bitnami/kubectl", "ghcr.io/edgelb/sync-agent", "docker.io/library/busybox",
  "registry.k8s.io/kube-state-metrics/kube-state-metrics",
];

const CONDITIONS: [type: string, status: string, reason: string, message: string][] = [
  ["FrequentUnregisterNetDevice", "False", "NoFrequentUnregisterNetDevice", "node is functioning properly"],
  ["FrequentKubeletRestart", "False", "NoFrequentKubeletRestart", "kubelet is functioning properly"],
  ["FrequentDockerRestart", "False", "NoFrequentDockerRestart", "docker is functioning properly"],
  ["FrequentContainerdRestart", "False", "NoFrequentContainerdRestart", "containerd is functioning properly"],
  ["KernelDeadlock", "False", "KernelHasNoDeadlock", "kernel has no deadlock"],
  ["ReadonlyFilesystem", "False", "FilesystemIsNotReadOnly", "Filesystem is not read-only"],
  ["NetworkUnavailable", "False", "RouteCreated", "RouteController created a route"],
  ["MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"],
  ["DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"],
  ["PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"],
  ["Ready", "True", "KubeletReady", "kubelet is posting ready status. AppArmor enabled"],
];

function managedFields(i: number, time: string): unknown[] {
  const f = (manager: string, operation: string, subresource: string | undefined, fields: unknown) => ({
    manager,
    operation,
    apiVersion: "v1",
    time,
    fieldsType: "FieldsV1",
    fieldsV1: fields,
    ...(subresource ? { subresource } : {}),
  });
  const conditionFields = Object.fromEntries(
    CONDITIONS.map(([type]) => [`k:{"type":"${type}"}`, { ".": {}, "f:lastHeartbeatTime": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {} }]),
  );
  return [
    f("kubeadm", "Update", undefined, { "f:metadata": { "f:annotations": { "f:kubeadm.alpha.kubernetes.io/cri-socket": {} } } }),
    f("kubelet", "Update", undefined, {
      "f:metadata": { "f:annotations": { ".": {}, "f:node.alpha.kubernetes.io/ttl": {}, "f:volumes.kubernetes.io/controller-managed-attach-detach": {} }, "f:labels": { ".": {}, "f:beta.kubernetes.io/arch": {}, "f:beta.kubernetes.io/os": {}, "f:kubernetes.io/arch": {}, "f:kubernetes.io/hostname": {}, "f:kubernetes.io/os": {} } },
      "f:spec": { "f:podCIDR": {}, "f:podCIDRs": { ".": {}, [`v:"10.${i >> 8}.${i & 255}.0/24"`]: {} }, "f:providerID": {} },
    }),
    f("kube-controller-manager", "Update", undefined, { "f:metadata": { "f:annotations": { "f:node.alpha.kubernetes.io/ttl": {} } }, "f:spec": { "f:podCIDR": {}, "f:podCIDRs": {} } }),
    f("calico-node", "Update", "status", { "f:status": { "f:conditions": { 'k:{"type":"NetworkUnavailable"}': { ".": {}, "f:lastHeartbeatTime": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {} } } } }),
    f("node-problem-detector", "Update", "status", { "f:status": { "f:conditions": conditionFields } }),
    f("kubelet", "Update", "status", {
      "f:status": {
        "f:allocatable": { "f:cpu": {}, "f:ephemeral-storage": {}, "f:memory": {}, "f:pods": {} },
        "f:capacity": { "f:cpu": {}, "f:ephemeral-storage": {}, "f:memory": {}, "f:pods": {} },
        "f:conditions": conditionFields,
        "f:daemonEndpoints": { "f:kubeletEndpoint": { "f:Port": {} } },
        "f:images": {},
        "f:nodeInfo": { "f:architecture": {}, "f:bootID": {}, "f:containerRuntimeVersion": {}, "f:kernelVersion": {}, "f:kubeProxyVersion": {}, "f:kubeletVersion": {}, "f:machineID": {}, "f:operatingSystem": {}, "f:osImage": {}, "f:systemUUID": {} },
      },
    }),
  ];
}

export interface RealisticNodeOptions {
  /** The node's InternalIP. */
  address: string;
  /** lastHeartbeatTime of every condition (ISO, second precision); a heartbeat changes only this. */
  heartbeat?: string;
}

/** A Node as a kubelet on a real cluster writes it (~15 KB of JSON). */
export function realisticNode(i: number, opts: RealisticNodeOptions): Record<string, unknown> {
  const name = `node-${i}`;
  const created = "2026-01-05T08:00:00Z";
  const heartbeat = opts.heartbeat ?? "2026-03-01T12:00:00Z";
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "m5.xlarge",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "m5.xlarge",
        "node-role.kubernetes.io/worker": "",
        "topology.kubernetes.io/region": "eu-central",
        "topology.kubernetes.io/zone": `eu-central-${"abc"[i % 3]}`,
      },
      annotations: {
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        "projectcalico.org/IPv4Address": `${opts.address}/16`,
        "projectcalico.org/IPv4IPIPTunnelAddr": `10.${i >> 8}.${i & 255}.1`,
        "csi.volume.kubernetes.io/nodeid": JSON.stringify({ "secrets-store.csi.k8s.io": name, "ebs.csi.aws.com": `i-${hex(i, 17)}` }),
      },
      creationTimestamp: created,
      managedFields: managedFields(i, created),
    },
    spec: {
      podCIDR: `10.${i >> 8}.${i & 255}.0/24`,
      podCIDRs: [`10.${i >> 8}.${i & 255}.0/24`],
      providerID: `aws:///eu-central-1${"abc"[i % 3]}/i-${hex(i, 17)}`,
    },
    status: {
      addresses: [
        { type: "InternalIP", address: opts.address },
        { type: "Hostname", address: name },
        { type: "InternalDNS", address: `ip-${opts.address.replaceAll(".", "-")}.eu-central-1.compute.internal` },
      ],
      allocatable: { cpu: "3920m", "ephemeral-storage": "95551679124", "hugepages-1Gi": "0", "hugepages-2Mi": "0", memory: "15491624Ki", pods: "110" },
      capacity: { cpu: "4", "ephemeral-storage": "103676564Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0", memory: "16096796Ki", pods: "110" },
      conditions: CONDITIONS.map(([type, status, reason, message]) => ({ type, status, lastHeartbeatTime: heartbeat, lastTransitionTime: created, reason, message })),
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      images: IMAGES.map((repo, k) => ({
        names: [`${repo}@sha256:${hex(i * 31 + k, 64)}`, `${repo}:v${1 + (k % 4)}.${k % 10}.${(i + k) % 7}`],
        sizeBytes: 10_000_000 + ((k * 7_919_993) % 300_000_000),
      })),
      nodeInfo: {
        architecture: "amd64",
        bootID: `${hex(i, 8)}-${hex(i + 1, 4)}-${hex(i + 2, 4)}-${hex(i + 3, 4)}-${hex(i + 4, 12)}`,
        containerRuntimeVersion: "containerd://1.7.27",
        kernelVersion: "6.8.0-1021-aws",
        kubeProxyVersion: KUBELET_VERSION,
        kubeletVersion: KUBELET_VERSION,
        machineID: hex(i + 5, 32),
        operatingSystem: "linux",
        osImage: "Ubuntu 24.04.2 LTS",
        systemUUID: `ec2${hex(i + 6, 5)}-${hex(i + 7, 4)}-${hex(i + 8, 4)}-${hex(i + 9, 4)}-${hex(i + 10, 12)}`,
      },
    },
  };
}

/** A status-only update as the kubelet sends it: every condition's lastHeartbeatTime moves, nothing else. */
export function heartbeat(node: Record<string, unknown>, at: string): Record<string, unknown> {
  const status = node.status as { conditions: Record<string, unknown>[] };
  return { ...node, status: { ...status, conditions: status.conditions.map((c) => ({ ...c, lastHeartbeatTime: at })) } };
}

/** A LoadBalancer Service as users write them (labels, kubectl's last-applied annotation, managedFields). */
export function realisticService(i: number, namespace: string, hostname: string): Record<string, unknown> {
  const name = `svc-${i}`;
  const spec = { type: "LoadBalancer", selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] };
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace,
      labels: { app: name, "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": namespace, "helm.sh/chart": `${name}-1.4.2` },
      annotations: {
        "edgelb.dev/hostnames": hostname,
        "meta.helm.sh/release-name": name,
        "meta.helm.sh/release-namespace": namespace,
        "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({ apiVersion: "v1", kind: "Service", metadata: { name, namespace, annotations: { "edgelb.dev/hostnames": hostname } }, spec }),
      },
      managedFields: [
        { manager: "helm", operation: "Update", apiVersion: "v1", time: "2026-01-05T08:00:00Z", fieldsType: "FieldsV1", fieldsV1: { "f:metadata": { "f:annotations": {}, "f:labels": {} }, "f:spec": { "f:ports": {}, "f:selector": {}, "f:type": {} } } },
      ],
    },
    spec,
  };
}
