// Server-side printing: the `Table` kubectl asks for with
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, with the columns the
// real server prints for each resource.
import type { Obj } from "./selectors.ts";

export interface Column {
  name: string;
  type: "string" | "integer" | "date";
  format?: string;
  description: string;
  /** 0 = always shown; 1 = only with -o wide. */
  priority: number;
}

export interface TablePrinter {
  columns: Column[];
  cells(obj: Obj, now: number): unknown[];
}

const col = (name: string, description: string, priority = 0, type: Column["type"] = "string"): Column => ({
  name,
  type,
  format: name === "Name" ? "name" : "",
  description,
  priority,
});

/** kubectl's human duration: 45s, 2m3s, 10m, 3h4m, 5d, 2y... */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  if (d < 365 * 8) return d % 365 === 0 ? `${y}y` : `${y}y${d % 365}d`;
  return `${y}y`;
}

const age = (obj: Obj, now: number) => {
  const t = Date.parse(obj.metadata?.creationTimestamp ?? "");
  return Number.isNaN(t) ? "<unknown>" : humanDuration(now - t);
};

/** For printers defined beside their resource (apps.ts). */
export const columnOf = col;
export const ageOf = age;

const nameCol = col("Name", "Name must be unique within a namespace.");
const ageCol = col("Age", "CreationTimestamp is a timestamp representing the server time when this object was created.");

export const defaultPrinter: TablePrinter = {
  columns: [nameCol, col("Created At", "The date and time the object was created", 0, "date")],
  cells: (o) => [o.metadata?.name, o.metadata?.creationTimestamp],
};

function nodeStatus(n: Obj): string {
  const ready = (n.status?.conditions ?? []).find((c: Obj) => c.type === "Ready");
  const parts = [ready ? (ready.status === "True" ? "Ready" : ready.status === "False" ? "NotReady" : "Unknown") : "Unknown"];
  if (n.spec?.unschedulable) parts.push("SchedulingDisabled");
  return parts.join(",");
}

function nodeRoles(n: Obj): string {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries<string>(n.metadata?.labels ?? {})) {
    if (k.startsWith("node-role.kubernetes.io/")) roles.add(k.slice("node-role.kubernetes.io/".length));
    else if (k === "kubernetes.io/role" && v) roles.add(v);
  }
  return roles.size ? [...roles].sort().join(",") : "<none>";
}

const nodeAddress = (n: Obj, type: string) =>
  (n.status?.addresses ?? []).find((a: Obj) => a.type === type)?.address ?? "<none>";

export const nodePrinter: TablePrinter = {
  columns: [
    nameCol,
    col("Status", "The status of the node"),
    col("Roles", "The roles of the node"),
    ageCol,
    col("Version", "Kubelet Version reported by the node."),
    col("Internal-IP", "List of internal IPs in the node.", 1),
    col("External-IP", "List of external IPs in the node.", 1),
    col("OS-Image", "OS image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
    col("Kernel-Version", "Kernel version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    col("Container-Runtime", "Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1),
  ],
  cells: (n, now) => [
    n.metadata?.name,
    nodeStatus(n),
    nodeRoles(n),
    age(n, now),
    n.status?.nodeInfo?.kubeletVersion ?? "",
    nodeAddress(n, "InternalIP"),
    nodeAddress(n, "ExternalIP"),
    n.status?.nodeInfo?.osImage || "<unknown>",
    n.status?.nodeInfo?.kernelVersion || "<unknown>",
    n.status?.nodeInfo?.containerRuntimeVersion || "<unknown>",
  ],
};

function serviceExternalIP(s: Obj): string {
  const external: string[] = s.spec?.externalIPs ?? [];
  switch (s.spec?.type) {
    case "ClusterIP":
    case "NodePort":
      return external.length ? external.join(",") : "<none>";
    case "LoadBalancer": {
      const ingress = (s.status?.loadBalancer?.ingress ?? []).map((i: Obj) => i.ip || i.hostname).filter(Boolean);
      const all = [...ingress, ...external];
      return all.length ? all.join(",") : "<pending>";
    }
    case "ExternalName":
      return s.spec?.externalName ?? "<none>";
    default:
      return "<unknown>";
  }
}

function servicePorts(s: Obj): string {
  const ports: Obj[] = s.spec?.ports ?? [];
  if (!ports.length) return "<none>";
  return ports.map((p) => (p.nodePort ? `${p.port}:${p.nodePort}/${p.protocol}` : `${p.port}/${p.protocol}`)).join(",");
}

const selectorText = (sel: Record<string, string> | undefined) =>
  sel && Object.keys(sel).length ? Object.entries(sel).sort().map(([k, v]) => `${k}=${v}`).join(",") : "<none>";

export const servicePrinter: TablePrinter = {
  columns: [
    nameCol,
    col("Type", "The type of the service."),
    col("Cluster-IP", "The IP address of the service."),
    col("External-IP", "The external IP address of the service."),
    col("Port(s)", "The ports of the service."),
    ageCol,
    col("Selector", "Route service traffic to pods with label keys and values matching this selector.", 1),
  ],
  cells: (s, now) => [
    s.metadata?.name,
    s.spec?.type,
    s.spec?.type === "ExternalName" ? "<none>" : s.spec?.clusterIP || "<none>",
    serviceExternalIP(s),
    servicePorts(s),
    age(s, now),
    selectorText(s.spec?.selector),
  ],
};

export const endpointSlicePrinter: TablePrinter = {
  columns: [nameCol, col("AddressType", "The type of addresses."), col("Ports", "Ports in the slice."), col("Endpoints", "Endpoints in the slice."), ageCol],
  cells: (e, now) => {
    const ports = (e.ports ?? []).map((p: Obj) => p.port).filter((p: unknown) => p !== undefined);
    const addrs = (e.endpoints ?? []).flatMap((x: Obj) => x.addresses ?? []);
    const shown = addrs.slice(0, 3).join(",") + (addrs.length > 3 ? ` + ${addrs.length - 3} more...` : "");
    return [e.metadata?.name, e.addressType, ports.length ? ports.join(",") : "<unset>", addrs.length ? shown : "<unset>", age(e, now)];
  },
};

export const podPrinter: TablePrinter = {
  columns: [
    nameCol,
    col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "The aggregate status of the containers in this pod."),
    col("Restarts", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    ageCol,
    col("IP", "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
    col("Node", "NodeName is a request to schedule this pod onto a specific node.", 1),
    col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.", 1),
    col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
  ],
  cells: (p, now) => {
    const statuses: Obj[] = p.status?.containerStatuses ?? [];
    const total = (p.spec?.containers ?? []).length;
    const ready = statuses.filter((c) => c.ready).length;
    const restarts = statuses.reduce((n, c) => n + (c.restartCount ?? 0), 0);
    const phase = p.metadata?.deletionTimestamp ? "Terminating" : (p.status?.reason ?? p.status?.phase ?? "Unknown");
    return [p.metadata?.name, `${ready}/${total}`, phase, restarts, age(p, now), p.status?.podIP || "<none>", p.spec?.nodeName || "<none>", "<none>", "<none>"];
  },
};

export const endpointsPrinter: TablePrinter = {
  columns: [nameCol, col("Endpoints", "Endpoints of the service."), ageCol],
  cells: (e, now) => {
    const all = (e.subsets ?? []).flatMap((s: Obj) =>
      (s.addresses ?? []).flatMap((a: Obj) => ((s.ports ?? []).length ? s.ports.map((p: Obj) => `${a.ip}:${p.port}`) : [a.ip])),
    );
    const shown = all.slice(0, 3).join(",") + (all.length > 3 ? ` + ${all.length - 3} more...` : "");
    return [e.metadata?.name, all.length ? shown : "<none>", age(e, now)];
  },
};

export const leasePrinter: TablePrinter = {
  columns: [nameCol, col("Holder", "The holder of the lease."), ageCol],
  cells: (l, now) => [l.metadata?.name, l.spec?.holderIdentity ?? "", age(l, now)],
};

export const namespacePrinter: TablePrinter = {
  columns: [nameCol, col("Status", "The status of the namespace"), ageCol],
  cells: (n, now) => [n.metadata?.name, n.status?.phase ?? "Active", age(n, now)],
};

export const eventPrinter: TablePrinter = {
  columns: [
    col("Last Seen", "Time when last this event was seen"),
    col("Type", "Type of this event."),
    col("Reason", "Reason why this event was generated."),
    col("Object", "The object that this event is about."),
    col("Message", "A human-readable description of the status of this operation."),
  ],
  cells: (e, now) => {
    const last = Date.parse(e.lastTimestamp ?? e.series?.lastObservedTime ?? e.eventTime ?? e.metadata?.creationTimestamp ?? "");
    const about = e.involvedObject ?? e.regarding ?? {};
    return [
      Number.isNaN(last) ? "<unknown>" : humanDuration(now - last),
      e.type ?? "",
      e.reason ?? "",
      `${String(about.kind ?? "").toLowerCase()}/${about.name ?? ""}`,
      e.message ?? e.note ?? "",
    ];
  },
};

/** Builds the Table for a list of objects (rows carry PartialObjectMetadata). */
export function toTable(printer: TablePrinter, items: Obj[], listMeta: Obj, includeObject: string, now = Date.now()): Obj {
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: listMeta,
    columnDefinitions: printer.columns,
    rows: items.map((o) => ({
      cells: printer.cells(o, now),
      object:
        includeObject === "Object"
          ? o
          : includeObject === "None"
            ? undefined
            : { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
    })),
  };
}
