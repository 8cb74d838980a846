// What `npm start` prints once everything is up: where things are, and what
// to try with curl and kubectl, and what to look for afterwards.
import path from "node:path";
import type { Demo } from "./demo.ts";
import { paint, type Output } from "./logs.ts";

/** A path as short as it can be typed from the working directory (never climbing out of it with ../). */
export function shortPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : p;
}

/**
 * The `export KUBECONFIG=…` line: a relative path would break as soon as the
 * reader's second terminal is elsewhere, so `$PWD/…` (as the README writes it),
 * or the absolute path when the file is not below the working directory.
 */
export function kubeconfigExport(p: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, p);
  const below = rel && !rel.startsWith("..") && !path.isAbsolute(rel);
  return `export KUBECONFIG=${below ? `$PWD/${rel}` : p}`;
}

/** Whether curl reaches the worker at http://<name>.localhost:<port>/ (curl resolves *.localhost to loopback by itself). */
function reachedByName(worker: Pick<Demo, "host">): boolean {
  return worker.host === "127.0.0.1" || worker.host === "0.0.0.0" || worker.host === "localhost" || worker.host === "::";
}

/** A curl command for `hostname` through the worker at its --host and --port (other listen addresses need the Host header). */
export function curlFor(worker: Pick<Demo, "host" | "port">, hostname: string, extra = ""): string {
  return reachedByName(worker)
    ? `curl${extra} http://${hostname}:${worker.port}/`
    : `curl${extra} -H 'Host: ${hostname}' http://${worker.host}:${worker.port}/`;
}

/** Where `hostname` is served, as a URL a reader can use (with the Host to send when the worker is not on 127.0.0.1). */
export function urlFor(worker: Pick<Demo, "host" | "port">, hostname: string): string {
  return reachedByName(worker) ? `http://${hostname}:${worker.port}/` : `http://${worker.host}:${worker.port}/ (Host: ${hostname})`;
}

export function instructions(demo: Demo, out: Output): string[] {
  const b = (t: string) => paint(out, "bold", t);
  const c = (t: string) => paint(out, "cyan", t);
  const d = (t: string) => paint(out, "gray", t);
  const k = `kubectl --kubeconfig ${shortPath(demo.kubeconfigPath)}`;
  const lines: string[] = [""];
  lines.push(b(`edgelb demo is ready (${(demo.startupMs / 1000).toFixed(1)} s)`), "");
  lines.push(`  Worker        ${demo.workerUrl}   (local workerd, local KV, cluster "demo")`);
  lines.push(`  Status page   ${demo.statusPageUrl}`);
  if (demo.cluster) {
    lines.push(`  Cluster       simulated: ${demo.cluster.nodes.map((n) => `${n.name} ${n.address}`).join(", ")}`);
  } else {
    lines.push(`  Cluster       real, from ${demo.kubeconfigPath} (read-only: the demo writes nothing to it)`);
  }
  if (demo.gates) lines.push(`  Node gates    port ${demo.gates.port} on every node: the worker signs each request, the gates forward it to the NodePort`);
  lines.push(`  Kubeconfig    ${demo.kubeconfigPath}`);
  lines.push(`  Push token    ${shortPath(demo.tokenPath)}   (the agent's: writes cluster "demo" only)`);
  lines.push(`  Read token    ${shortPath(demo.readTokenPath)}   (the status page's: reads only)`);
  lines.push("");

  if (!demo.cluster) {
    lines.push(b("Try it"), "");
    lines.push(`  Services of type LoadBalancer with ${c("spec.loadBalancerClass: edgelb.dev/worker")} are served as`);
    lines.push(`  <name>.<namespace>.localhost (or the hostnames in their edgelb.dev/hostnames annotation):`);
    lines.push(`    ${c(`curl http://<name>.<namespace>.localhost:${demo.port}/`)}`);
    lines.push(`  The worker connects to the nodes' addresses and NodePorts from this machine, and the agent`);
    lines.push(`  probes kube-proxy's :10256/healthz on each node: both must be reachable from here.`);
    lines.push("", d("Ctrl-C stops everything."), "");
    return lines;
  }

  const web = demo.services.find((s) => s.policy === "Cluster")!;
  const api = demo.services.find((s) => s.policy === "Local")!;
  lines.push(b("Two demo apps: Deployments of an echo app, each behind a LoadBalancer Service"), "");
  lines.push(`  ${web.name}  ${web.replicas} pods  externalTrafficPolicy: Cluster  ${c(urlFor(demo, web.hostname))}  every node serves it`);
  lines.push(`  ${api.name}  ${api.replicas} pods  externalTrafficPolicy: Local    ${c(urlFor(demo, api.hostname))}  only nodes with its pods: ${[...new Set(api.pods)].join(", ")}`);
  lines.push("");
  lines.push(b("Try it") + " (in another terminal, in this directory)", "");
  lines.push(`  ${c(curlFor(demo, web.hostname))}`);
  lines.push(d(`      the echo app answers with its pod, node, version and your request's headers`));
  lines.push(`  ${c(`${k} get deployments,pods,services -o wide`)}`);
  lines.push("");
  lines.push(b("The course's LoadBalancer steps") + ", with stock kubectl:", "");
  lines.push(`  ${c(kubeconfigExport(demo.kubeconfigPath))}   ${d("(in this directory)")}`);
  lines.push(`  1. Create a Deployment:  ${c("kubectl create deployment hello --image=edgelb/echo:1 --replicas=3 --port=8080")}`);
  lines.push(d("     three pods spread over the nodes, Running and Ready after a moment: kubectl get pods -o wide"));
  lines.push(`  2. Expose it:            ${c("kubectl expose deployment hello --type=LoadBalancer --port=80 --target-port=8080")}`);
  lines.push(`  3. Watch the hostname:   ${c("kubectl get service hello -w")}`);
  lines.push(d(`     EXTERNAL-IP goes from <pending> to hello.default.svc.localhost; agent: "service default/hello served at`));
  lines.push(d(`     hello.default.svc.localhost → nodePort …" and "pushed generation N"; then: ${curlFor(demo, "hello.default.svc.localhost", " -s")}`));
  lines.push(`  4. Scale it:             ${c("kubectl scale deployment hello --replicas=5")}`);
  lines.push(d("     and to 0: with no pod, every node would refuse the NodePort (as kube-proxy does); agent: \"service"));
  lines.push(d("     default/hello has no ready endpoint\", and the worker answers 503 \"no server is ready\" without trying a"));
  lines.push(d("     node; scale back to 3 and it answers again"));
  lines.push(`  5. Start a load loop:    ${c(`while sleep 0.1; do ${curlFor(demo, "hello.default.svc.localhost", " -s -o /dev/null -w '%{http_code} '")}; done`)}`);
  lines.push(`  6. Roll it:              ${c("kubectl rollout restart deployment hello && kubectl rollout status deployment hello")}`);
  lines.push(d("     new pods start and become Ready before old ones go (maxSurge/maxUnavailable 25%); old pods terminate"));
  lines.push(d(`     (demo: "pod … terminating: its endpoint is serving but not ready", "deployment default/hello rolled out")`));
  lines.push(d("     but keep serving while they drain: the loop prints only 200s. kubectl logs deploy/hello shows the requests"));
  lines.push(d("     one pod served; kubectl get endpointslices -o yaml shows ready/serving/terminating as it happens"));
  lines.push("");
  lines.push(b("Break things") + d(" (each step says how to undo it; undo one before the next to see each effect alone)"), "");
  lines.push(`  a. Cordon a node:      ${c(`${k} cordon node-3`)}`);
  lines.push(d(`     nothing changes for traffic: cordon only stops new pods; node-3 keeps serving ${web.name} (as with cloud load balancers)`));
  lines.push(d(`     undo:  ${k} uncordon node-3`));
  lines.push(`  b. Exclude a node:     ${c(`${k} label node node-3 node.kubernetes.io/exclude-from-external-load-balancers=true`)}`);
  lines.push(d(`     agent: "node node-3 is not a backend: labelled …" and "pushed generation N: nodes -node-3"; ${web.name}'s answers say "via":"node-1" or "via":"node-2" only (via: the node whose NodePort the edge used; node: the pod's node)`));
  lines.push(d(`     undo:  ${k} label node node-3 node.kubernetes.io/exclude-from-external-load-balancers-`));
  lines.push(`  c. Take a node down:   ${c(`${k} annotate node node-2 sim.edgelb.dev/fault=down`)}`);
  lines.push(d(`     worker: proxy.retry node=node-2 (cannot connect), the request still succeeds on another node, then`));
  lines.push(d(`     node.ejected node=node-2;`));
  lines.push(d(`     agent: "node node-2 failed its health check (HTTP 503): out of rotation"; the status page shows node-2`));
  lines.push(d(`     unhealthy, and ejected by the worker after failed connections`));
  lines.push(d(`     undo:  ${k} annotate node node-2 sim.edgelb.dev/fault-     (other faults: unhealthy, error, slow)`));
  lines.push(`  d. Scale ${api.name} (Local): ${c(`${k} scale deployment ${api.name} --replicas=1`)}`);
  lines.push(d(`     ${api.hostname} answers only from the node that keeps a pod; the others fail kube-proxy's health check for it`));
  lines.push(d(`     undo:  ${k} scale deployment ${api.name} --replicas=${api.replicas}`));
  lines.push(`  e. Delete a Service:   ${c(`${k} delete service ${web.name}`)}`);
  lines.push(d(`     agent: "service default/${web.name} deleted" and a push; ${web.hostname} answers 404 "not served here"`));
  lines.push("");
  lines.push(d("Ctrl-C stops everything."), "");
  return lines;
}
