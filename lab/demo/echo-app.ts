// The lab's demo apps as the course writes them: a Deployment of the echo app
// (each pod answers with its name, node and version; `kubectl logs` shows the
// requests it served), selected by `app: NAME`, as `kubectl create deployment`
// would make it.
import type { Obj } from "../cluster/api/selectors.ts";

/** The echo image the demo's Deployments run (its tag is the version the echo reports). */
export const DEMO_IMAGE = "edgelb/echo:1";

export function echoDeployment(name: string, replicas: number, image = DEMO_IMAGE, namespace = "default"): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "echo", image, ports: [{ name: "http", containerPort: 8080 }] }] },
      },
    },
  };
}
