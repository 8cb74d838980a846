// Field descriptions of the kinds the simulated cluster implements in depth
// (the upstream field names and types; descriptions shortened). Deep
// structures it does not act on (probes, volumes, affinity…) are kept as
// "any": accepted and stored as written, never refused as unknown.
import { any, bool, int, intOrString, list, obj, str, stringSet, strMap, time, type Field } from "./fields.ts";

export const OBJECT_META = obj(
  {
    name: str("Name must be unique within a namespace. Cannot be updated."),
    generateName: str("An optional prefix the server uses to generate a unique name when name is not provided."),
    namespace: str("The namespace the object belongs to. Cannot be updated."),
    selfLink: str("Deprecated: not set by the server."),
    uid: str("The unique identity of this object, set by the server."),
    resourceVersion: str("An opaque value for optimistic concurrency and watches."),
    generation: int("A sequence number representing a specific generation of the desired state."),
    creationTimestamp: time("When this object was created (server time)."),
    deletionTimestamp: time("When this object will be deleted; set by the server when a graceful deletion is requested."),
    deletionGracePeriodSeconds: int("Seconds allowed for this object to terminate gracefully before it is removed."),
    labels: strMap("Map of string keys and values used to organize and select objects."),
    annotations: strMap("Unstructured key value map for arbitrary metadata."),
    ownerReferences: list(any(), "Objects this object depends on; garbage collected with them.", "uid"),
    finalizers: stringSet("Must be empty before the object is deleted from the registry."),
    managedFields: list(any(), "Field ownership (server-side apply); not tracked here."),
  },
  "ObjectMeta is metadata that all persisted resources must have.",
);
(OBJECT_META as { ref?: string }).ref = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

const LABEL_SELECTOR = obj(
  {
    matchLabels: strMap("A map of {key,value} pairs; each is equivalent to an In requirement."),
    matchExpressions: list(obj({ key: str(), operator: str(undefined, ["In", "NotIn", "Exists", "DoesNotExist"]), values: list(str()) }, undefined, ["key", "operator"]), "A list of label selector requirements, ANDed."),
  },
  "A label query over a set of resources.",
);

const CONTAINER_PORT = obj(
  {
    name: str("An IANA_SVC_NAME a Service can refer to."),
    containerPort: int("Port to expose on the pod's IP address."),
    hostPort: int(),
    hostIP: str(),
    protocol: str("UDP, TCP, or SCTP. Defaults to TCP.", ["SCTP", "TCP", "UDP"]),
  },
  undefined,
  ["containerPort"],
);

const CONTAINER = obj(
  {
    name: str("Name of the container, unique within the pod (DNS_LABEL)."),
    image: str("Container image name. In the simulated cluster the image's tag is the echo app's version."),
    command: list(str(), "Entrypoint array."),
    args: list(str(), "Arguments to the entrypoint."),
    workingDir: str(),
    ports: list(CONTAINER_PORT, "Ports to expose from the container.", "containerPort"),
    envFrom: list(any()),
    env: list(obj({ name: str(), value: str(), valueFrom: any() }, undefined, ["name"]), "Environment variables to set in the container.", "name"),
    resources: any("Compute resources required by this container."),
    resizePolicy: list(any()),
    restartPolicy: str(),
    volumeMounts: list(any(), undefined, "mountPath"),
    volumeDevices: list(any(), undefined, "devicePath"),
    livenessProbe: any(),
    readinessProbe: any("Periodic probe of container service readiness."),
    startupProbe: any(),
    lifecycle: any("Actions the system takes in response to container lifecycle events (preStop)."),
    terminationMessagePath: str(),
    terminationMessagePolicy: str(),
    imagePullPolicy: str("Always, Never, IfNotPresent.", ["Always", "IfNotPresent", "Never"]),
    securityContext: any(),
    stdin: bool(),
    stdinOnce: bool(),
    tty: bool(),
  },
  "A single application container that you want to run within a pod.",
  ["name"],
);

export const POD_SPEC = obj(
  {
    volumes: list(any(), undefined, "name"),
    initContainers: list(CONTAINER, undefined, "name"),
    containers: list(CONTAINER, "List of containers belonging to the pod. At least one.", "name"),
    ephemeralContainers: list(any(), undefined, "name"),
    restartPolicy: str("Restart policy for all containers within the pod.", ["Always", "Never", "OnFailure"]),
    terminationGracePeriodSeconds: int("Seconds the pod has to terminate gracefully after a delete request (default 30). Its endpoints stay serving (terminating) meanwhile."),
    activeDeadlineSeconds: int(),
    dnsPolicy: str(),
    nodeSelector: strMap("Labels a node must have for the pod to be scheduled on it."),
    serviceAccountName: str(),
    serviceAccount: str(),
    automountServiceAccountToken: bool(),
    nodeName: str("The node this pod is bound to (set by the scheduler)."),
    hostNetwork: bool(),
    hostPID: bool(),
    hostIPC: bool(),
    shareProcessNamespace: bool(),
    securityContext: any(),
    imagePullSecrets: list(any(), undefined, "name"),
    hostname: str(),
    subdomain: str(),
    affinity: any(),
    schedulerName: str(),
    tolerations: list(any()),
    hostAliases: list(any(), undefined, "ip"),
    priorityClassName: str(),
    priority: int(),
    dnsConfig: any(),
    readinessGates: list(any()),
    runtimeClassName: str(),
    enableServiceLinks: bool(),
    preemptionPolicy: str(),
    overhead: any(),
    topologySpreadConstraints: list(any(), undefined, "topologyKey"),
    setHostnameAsFQDN: bool(),
    os: any(),
    hostUsers: bool(),
    schedulingGates: list(any(), undefined, "name"),
    resourceClaims: list(any(), undefined, "name"),
  },
  "PodSpec is a description of a pod.",
  ["containers"],
);

const CONDITION = obj({ type: str(), status: str(), observedGeneration: int(), lastUpdateTime: time(), lastProbeTime: time(), lastTransitionTime: time(), reason: str(), message: str() });

export const POD = obj({
  spec: POD_SPEC,
  status: obj(
    {
      phase: str("Pending, Running, Succeeded, Failed or Unknown."),
      conditions: list(CONDITION, "Current service state of pod (PodScheduled, Initialized, ContainersReady, Ready).", "type"),
      message: str(),
      reason: str(),
      nominatedNodeName: str(),
      hostIP: str(),
      hostIPs: list(any()),
      podIP: str(),
      podIPs: list(any(), undefined, "ip"),
      startTime: time(),
      initContainerStatuses: list(any()),
      containerStatuses: list(any()),
      qosClass: str(),
      ephemeralContainerStatuses: list(any()),
      resize: str(),
      resourceClaimStatuses: list(any()),
    },
    "Most recently observed status of the pod.",
  ),
}, "Pod is a collection of containers that can run on a host.");

const POD_TEMPLATE = obj({ metadata: OBJECT_META, spec: POD_SPEC }, "Template describes the pods that will be created.");

export const DEPLOYMENT = obj(
  {
    spec: obj(
      {
        replicas: int("Number of desired pods (default 1). `kubectl scale` sets it through the scale subresource."),
        selector: LABEL_SELECTOR,
        template: POD_TEMPLATE,
        strategy: obj(
          {
            type: str("Recreate or RollingUpdate (default).", ["Recreate", "RollingUpdate"]),
            rollingUpdate: obj({
              maxUnavailable: intOrString("Pods that can be unavailable during the update: a number or a percentage of desired pods, rounded down (default 25%)."),
              maxSurge: intOrString("Pods that can be scheduled above the desired number: a number or a percentage, rounded up (default 25%)."),
            }),
          },
          "The deployment strategy used to replace existing pods with new ones.",
        ),
        minReadySeconds: int("Seconds a new pod must be ready to count as available (default 0)."),
        revisionHistoryLimit: int("Old ReplicaSets to retain for rollback (default 10)."),
        paused: bool("Indicates that the deployment is paused."),
        progressDeadlineSeconds: int("Seconds for the deployment to make progress before it is considered failed (default 600)."),
      },
      "Specification of the desired behavior of the Deployment.",
      ["selector", "template"],
    ),
    status: obj(
      {
        observedGeneration: int(),
        replicas: int("Total non-terminated pods targeted by this deployment."),
        updatedReplicas: int("Non-terminated pods that have the desired template spec."),
        readyReplicas: int(),
        availableReplicas: int(),
        unavailableReplicas: int(),
        terminatingReplicas: int(),
        conditions: list(CONDITION, undefined, "type"),
        collisionCount: int(),
      },
      "Most recently observed status of the Deployment.",
    ),
  },
  "Deployment enables declarative updates for Pods and ReplicaSets.",
);

export const REPLICA_SET = obj(
  {
    spec: obj(
      {
        replicas: int("Number of desired pods (default 1)."),
        minReadySeconds: int(),
        selector: LABEL_SELECTOR,
        template: POD_TEMPLATE,
      },
      "Spec defines the desired behavior of the ReplicaSet.",
      ["selector"],
    ),
    status: obj(
      {
        replicas: int(),
        fullyLabeledReplicas: int(),
        readyReplicas: int(),
        availableReplicas: int(),
        terminatingReplicas: int(),
        observedGeneration: int(),
        conditions: list(CONDITION, undefined, "type"),
      },
      "The most recently observed status of the ReplicaSet.",
    ),
  },
  "ReplicaSet ensures that a specified number of pod replicas are running at any given time.",
);

export const SCALE = obj(
  {
    spec: obj({ replicas: int("Desired number of instances for the scaled object.") }),
    status: obj({ replicas: int("Actual number of observed instances."), selector: str("Label query over pods, in string form.") }),
  },
  "Scale represents a scaling request for a resource.",
);

export const SERVICE = obj(
  {
    spec: obj(
      {
        ports: list(
          obj(
            {
              name: str("The name of this port within the service (DNS_LABEL); required when there are several."),
              protocol: str("TCP, UDP or SCTP (default TCP).", ["SCTP", "TCP", "UDP"]),
              appProtocol: str(),
              port: int("The port exposed by this service."),
              targetPort: intOrString("Number or name of the port to access on the pods (default: port)."),
              nodePort: int("The port on each node on which this service is exposed (NodePort, LoadBalancer); allocated when not given."),
            },
            undefined,
            ["port"],
          ),
          "The list of ports exposed by this service.",
          "port",
        ),
        selector: strMap("Route service traffic to pods with label keys and values matching this selector."),
        clusterIP: str(),
        clusterIPs: list(str()),
        type: str("ClusterIP (default), NodePort, LoadBalancer or ExternalName.", ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]),
        externalIPs: list(str()),
        sessionAffinity: str(undefined, ["ClientIP", "None"]),
        loadBalancerIP: str(),
        loadBalancerSourceRanges: list(str()),
        externalName: str(),
        externalTrafficPolicy: str("Cluster (default: every node forwards to every endpoint) or Local (only nodes with a local endpoint answer).", ["Cluster", "Local"]),
        healthCheckNodePort: int("Health check port on every node for externalTrafficPolicy: Local (allocated)."),
        publishNotReadyAddresses: bool(),
        sessionAffinityConfig: any(),
        ipFamilies: list(str()),
        ipFamilyPolicy: str(),
        allocateLoadBalancerNodePorts: bool(),
        loadBalancerClass: str("The class of the load balancer implementation this Service belongs to (edgelb.dev/worker for edgelb)."),
        internalTrafficPolicy: str(),
        trafficDistribution: str(),
      },
      "Spec defines the behavior of a service.",
    ),
    status: obj(
      {
        loadBalancer: obj({
          ingress: list(obj({ ip: str(), hostname: str("Set by edgelb: the hostname the edge serves this Service on."), ipMode: str(), ports: list(obj({ port: int(), protocol: str(), error: str() })) })),
        }),
        conditions: list(obj({ type: str(), status: str(), observedGeneration: int(), lastTransitionTime: time(), reason: str(), message: str() }), undefined, "type"),
      },
      "Most recently observed status of the service.",
    ),
  },
  "Service is a named abstraction of software service (for example, mysql) consisting of local port (for example 3306) that the proxy listens on, and the selector that determines which pods will answer requests sent through the proxy.",
);
