// The Gateway API objects as the agent reads them (gateway.networking.k8s.io
// v1, ReferenceGrant v1beta1). client-node has no types for custom resources;
// these are loose on purpose: every field may be missing or of the wrong type
// in a hostile or half-written object, and resolve.ts checks before use.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import type { CrdBundles } from "./versions.ts";

export const GATEWAY_GROUP = "gateway.networking.k8s.io";
/** The GatewayClass controllerName edgelb answers to. */
export const CONTROLLER_NAME = "edgelb.dev/gateway-controller";

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

interface Obj<Spec, Status> {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: Spec;
  status?: Status;
}

export type GatewayClass = Obj<{ controllerName?: string; parametersRef?: unknown; description?: string }, { conditions?: Condition[] }>;

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key?: string; operator?: string; values?: string[] }[];
}

export interface Listener {
  name?: string;
  hostname?: string;
  port?: number;
  protocol?: string;
  tls?: { mode?: string; certificateRefs?: { group?: string; kind?: string; name?: string; namespace?: string }[] };
  allowedRoutes?: {
    namespaces?: { from?: string; selector?: LabelSelector };
    kinds?: { group?: string; kind?: string }[];
  };
}

export interface ListenerStatus {
  name: string;
  supportedKinds: { group: string; kind: string }[];
  attachedRoutes: number;
  conditions: Condition[];
}

export interface GatewayStatus {
  addresses?: { type?: string; value?: string }[];
  conditions?: Condition[];
  listeners?: ListenerStatus[];
}

export type Gateway = Obj<{ gatewayClassName?: string; listeners?: Listener[]; addresses?: unknown[]; infrastructure?: { parametersRef?: unknown } }, GatewayStatus>;

export interface ParentRef {
  group?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  sectionName?: string;
  port?: number;
}

export interface BackendRefSpec {
  group?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  port?: number;
  weight?: number;
  filters?: unknown[];
}

export interface RouteRuleSpec {
  name?: string;
  matches?: unknown[];
  filters?: { type?: string; [k: string]: unknown }[];
  backendRefs?: BackendRefSpec[];
  timeouts?: unknown;
  sessionPersistence?: unknown;
  retry?: unknown;
}

export interface RouteParentStatus {
  parentRef: ParentRef;
  controllerName: string;
  conditions: Condition[];
}

export type HTTPRoute = Obj<{ parentRefs?: ParentRef[]; hostnames?: string[]; rules?: RouteRuleSpec[] }, { parents?: RouteParentStatus[] }>;

export type ReferenceGrant = Obj<
  {
    from?: { group?: string; kind?: string; namespace?: string }[];
    to?: { group?: string; kind?: string; name?: string }[];
  },
  never
>;

/** The four caches the Gateway section and statuses are resolved from. */
export interface GatewayCaches {
  gatewayClasses: readonly GatewayClass[];
  gateways: readonly Gateway[];
  httpRoutes: readonly HTTPRoute[];
  referenceGrants: readonly ReferenceGrant[];
  /** The installed CRDs' bundle versions (GatewayClass SupportedVersion); absent until read. */
  crdBundles?: CrdBundles;
}
