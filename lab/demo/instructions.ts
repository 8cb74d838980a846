// What `npm start` prints once everything is up: where things are, and what
// to try with curl and kubectl, and what to look for afterwards.
import path from "node:path";
import type { Demo } from "./demo.ts";
import { paint, type Output } from "./logs.ts";

/** A path as short as it can be typed from the working directory. */
function shortPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : p;
}

function curlFor(demo: Demo, hostname: string, extra = ""): string {
  // curl resolves *.localhost to loopback by itself; other listen addresses need the Host header.
  const loopback = demo.host === "127.0.0.1" || demo.host === "0.0.0.0" || demo.host === "localhost" || demo.host === "::";
  return loopback
    ? `curl${extra} http://${hostname}:${demo.port}/`
    : `curl${extra} -H 'Host: ${hostname}' http://${demo.host}:${demo.port}/`;
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
  lines.push(b("Two LoadBalancer Services"), "");
  lines.push(`  ${web.name}  externalTrafficPolicy: Cluster  ${c(`http://${web.hostname}:${demo.port}/`)}  every node serves it`);
  lines.push(`  ${api.name}  externalTrafficPolicy: Local    ${c(`http://${api.hostname}:${demo.port}/`)}  only nodes with its pods: ${api.pods.join(", ")}`);
  lines.push("");
  lines.push(b("Try it") + " (in another terminal, in this directory)", "");
  lines.push(`  ${c(curlFor(demo, web.hostname))}`);
  lines.push(d(`      the simulated app echoes the request as JSON; "node" says which node answered`));
  lines.push(`  ${c(`for i in 1 2 3 4 5 6; do ${curlFor(demo, web.hostname, " -s")} | grep -o '"node":"[^"]*"'; done`)}`);
  lines.push(d(`      round robin over node-1, node-2, node-3; with ${api.hostname} only ${api.pods.join(" and ")} answer`));
  lines.push(`  ${c(`${k} get nodes,services,pods -o wide`)}`);
  lines.push("");
  lines.push(d("  Each step says how to undo it; undo one before the next to see each effect alone."));
  lines.push(`  1. Cordon a node:      ${c(`${k} cordon node-3`)}`);
  lines.push(d(`     nothing changes: cordon only stops new pods; node-3 keeps serving ${web.name} (as with cloud load balancers)`));
  lines.push(d(`     undo:  ${k} uncordon node-3`));
  lines.push(`  2. Exclude a node:     ${c(`${k} label node node-3 node.kubernetes.io/exclude-from-external-load-balancers=true`)}`);
  lines.push(d(`     agent: "node node-3 is not a backend: labelled …" and "pushed generation N: nodes -node-3"; ${web.name} answers only from node-1 and node-2`));
  lines.push(d(`     undo:  ${k} label node node-3 node.kubernetes.io/exclude-from-external-load-balancers-`));
  lines.push(`  3. Take a node down:   ${c(`${k} annotate node node-2 sim.edgelb.dev/fault=down`)}`);
  lines.push(d(`     worker: proxy.retry node=node-2 (cannot connect), the request still succeeds on another node, then`));
  lines.push(d(`     node.ejected node=node-2;`));
  lines.push(d(`     agent: "node node-2 failed its health check (HTTP 503): out of rotation"; the status page shows node-2`));
  lines.push(d(`     unhealthy, and ejected by the worker after failed connections`));
  lines.push(d(`     undo:  ${k} annotate node node-2 sim.edgelb.dev/fault-     (other faults: unhealthy, error, slow)`));
  lines.push(`  4. Move ${api.name}'s pods:    ${c(`${k} annotate service ${api.name} sim.edgelb.dev/pods=node-3 --overwrite`)}`);
  lines.push(d(`     ${api.hostname} now answers only from node-3 (the simulated cluster has no Deployments: this annotation`));
  lines.push(d(`     places the pods; node-1,node-1,node-3 gives node-1 weight 2, used with edgelb.dev/algorithm=weighted)`));
  lines.push(d(`     undo:  ${k} annotate service ${api.name} sim.edgelb.dev/pods=${api.pods.join(",")} --overwrite`));
  lines.push(`  5. Delete a Service:   ${c(`${k} delete service ${web.name}`)}`);
  lines.push(d(`     agent: "service default/${web.name} deleted" and a push; ${web.hostname} answers 404 "not served here"`));
  lines.push("");
  lines.push(d("Ctrl-C stops everything."), "");
  return lines;
}
