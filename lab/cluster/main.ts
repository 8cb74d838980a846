// Runs a simulated cluster as a standalone process for the demo and for poking
// at it with kubectl:
//   node --import tsx lab/cluster/main.ts --nodes 3 [--address-base 127.0.0] [--first-host 11]
//        [--healthz-port 10256] [--api-port 0] [--token T] [--kubeconfig PATH]
// Prints the kubeconfig path (and a JSON line describing the cluster); Ctrl-C stops it.
import { Command } from "commander";
import { startCluster } from "./cluster.ts";

const program = new Command()
  .name("sim-cluster")
  .description("fake Kubernetes API server + simulated nodes on loopback")
  .option("--nodes <n>", "number of simulated nodes", "3")
  .option("--address-base <a.b.c>", "first three octets of node addresses", "127.0.0")
  .option("--first-host <n>", "host part of the first node's address", "11")
  .option("--healthz-port <port>", "kube-proxy healthz port on every node (0 = pick)", "10256")
  .option("--api-port <port>", "API server port (0 = pick)", "0")
  .option("--token <token>", "bearer token (default: random)")
  .option("--kubeconfig <path>", "write the kubeconfig here (default: a temp file)")
  .parse();

const o = program.opts<{ nodes: string; addressBase: string; firstHost: string; healthzPort: string; apiPort: string; token?: string; kubeconfig?: string }>();
const num = (v: string, what: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${what} must be a non-negative integer, got "${v}"`);
    process.exit(2);
  }
  return n;
};

const cluster = await startCluster({
  nodes: num(o.nodes, "nodes"),
  addressBase: o.addressBase,
  firstHost: num(o.firstHost, "first-host"),
  healthzPort: num(o.healthzPort, "healthz-port"),
  apiPort: num(o.apiPort, "api-port"),
  ...(o.token ? { token: o.token } : {}),
  ...(o.kubeconfig ? { kubeconfigPath: o.kubeconfig } : {}),
});
console.log(cluster.kubeconfigPath);
console.log(
  JSON.stringify({
    msg: "simulated cluster ready",
    api: cluster.url,
    kubeconfig: cluster.kubeconfigPath,
    healthzPort: cluster.healthzPort,
    nodes: cluster.nodes.map((n) => ({ name: n.name, address: n.address })),
  }),
);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await cluster.stop();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
