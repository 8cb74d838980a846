// Names the agent reads from the cluster. Annotations are ours; labels and
// taints are upstream's (k8s.io/api, cluster-autoscaler).
export const ANNOTATION_HOSTNAMES = "edgelb.dev/hostnames";
export const ANNOTATION_PORT = "edgelb.dev/port";
export const ANNOTATION_BACKEND_PROTOCOL = "edgelb.dev/backend-protocol";
export const ANNOTATION_ALGORITHM = "edgelb.dev/algorithm";
/** On a Node: the address the edge connects to, instead of one from status.addresses. */
export const ANNOTATION_NODE_ADDRESS = "edgelb.dev/address";
/** On a Namespace (admin territory): the hostnames its Services may claim, e.g. "*.shop.example.com,shop.example.com". */
export const ANNOTATION_ALLOWED_HOSTNAMES = "edgelb.dev/allowed-hostnames";
/** The cloud-provider annotation that predates spec.loadBalancerSourceRanges. */
export const ANNOTATION_SOURCE_RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges";

export const DEFAULT_LOAD_BALANCER_CLASS = "edgelb.dev/worker";

export const LABEL_EXCLUDE_FROM_LB = "node.kubernetes.io/exclude-from-external-load-balancers";
export const LABEL_ZONE = "topology.kubernetes.io/zone";
export const TAINT_TO_BE_DELETED = "ToBeDeletedByClusterAutoscaler";
export const LABEL_SERVICE_NAME = "kubernetes.io/service-name";
export const ANNOTATION_RETRY_NON_IDEMPOTENT = "edgelb.dev/retry-non-idempotent";
export const ANNOTATION_RESPONSE_TIMEOUT = "edgelb.dev/response-timeout";
