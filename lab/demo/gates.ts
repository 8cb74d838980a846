// `npm start -- --gate`: a node gate in front of every simulated node, as the
// production setup recommends (docs/gate.md). One fresh key per run, given to
// the worker (EDGELB_GATE_KEY) and to the gates; the agent publishes origins
// mode "gate" so the worker connects to nodeIP:gatePort and signs each request.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { DEFAULT_GATE_PORT, GATE_DEFAULTS, startGate, type Gate, type GateConfig } from "../../sync-agent/gate/main.ts";

export const DEMO_GATE_KEY_ID = "demo";

export interface DemoGates {
  port: number;
  /** EDGELB_GATE_KEY for the worker: "<key id>:<secret>". */
  workerKey: string;
  /** The gates running now (a downed node's is not). */
  readonly gates: Gate[];
  /**
   * A downed node takes its gate down with it (its port then refuses
   * connections, as a dead machine's would); `false` brings it back on the
   * same address and port. Idempotent.
   */
  setNodeDown(node: string, down: boolean): Promise<void>;
  stop(): Promise<void>;
}

/** Starts one gate per node (its Kubernetes name and address) of `cluster`, all on the same port (0: the first one picks). */
export async function startDemoGates(nodes: readonly { name: string; address: string }[], log: Logger, port = DEFAULT_GATE_PORT, cluster: string): Promise<DemoGates> {
  const secret = randomBytes(32).toString("base64url");
  const keys = KeyRing.of({ [DEMO_GATE_KEY_ID]: secret });
  const configs = new Map<string, GateConfig>();
  const running = new Map<string, Gate>();
  const start = async (name: string) => running.set(name, await startGate(configs.get(name)!, { log, keys }));
  try {
    for (const { name, address } of nodes) {
      configs.set(name, {
        ...GATE_DEFAULTS,
        listen: `${address}:${running.values().next().value?.port ?? port}`,
        connect: "node",
        nodeIp: address,
        nodeName: name,
        clusterName: cluster,
        // The simulated cluster's NodePorts are the kernel's pick, not 30000-32767.
        nodePorts: { min: 1024, max: 65535 },
        metricsAddress: "",
        logFormat: "pretty",
        logLevel: "info",
      });
      await start(name);
    }
  } catch (err) {
    for (const g of running.values()) await g.close();
    throw err;
  }
  return {
    port: running.values().next().value!.port,
    workerKey: `${DEMO_GATE_KEY_ID}:${secret}`,
    get gates() {
      return [...running.values()];
    },
    async setNodeDown(name, down) {
      if (!configs.has(name)) return;
      const gate = running.get(name);
      if (down && gate) {
        running.delete(name);
        await gate.close();
      } else if (!down && !gate) {
        await start(name);
      }
    },
    async stop() {
      for (const g of running.values()) await g.close();
      running.clear();
    },
  };
}
