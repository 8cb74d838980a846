// Three simulated nodes serving one NodePort (the same on every node, as kube-proxy does): the origins every
// data-plane row of the bench sends to.
import { SimNode } from "../../lab/cluster/sim-node.ts";
import { track } from "./cleanup.ts";

export interface BenchNodes {
  addresses: string[];
  names: string[];
  nodes: SimNode[];
  nodePort: number;
}

export async function startBenchNodes(addressBase: string): Promise<BenchNodes> {
  const addresses = [11, 12, 13].map((h) => `${addressBase}.${h}`);
  const names = addresses.map((_, i) => `node-${i + 1}`);
  const nodes: SimNode[] = [];
  for (const [i, address] of addresses.entries()) {
    const node = await SimNode.start({ name: names[i]!, address, healthzPort: 0 });
    track(`simulated node ${address}`, () => node.stop());
    nodes.push(node);
  }
  const nodePort = await nodes[0]!.servePort(0);
  for (const n of nodes.slice(1)) await n.servePort(nodePort);
  return { addresses, names, nodes, nodePort };
}
