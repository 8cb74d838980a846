// Starts test/chaos/gate-child.ts: a node gate in front of every simulated node, in its own process.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface GateProcess {
  port: number;
  /** EDGELB_GATE_KEY for the worker. */
  workerKey: string;
  /** The gates' own log lines (warnings and up). */
  readonly lines: string[];
  stop(): Promise<void>;
}

export async function startGateProcess(cluster: string, nodes: readonly { name: string; address: string }[]): Promise<GateProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/chaos/gate-child.ts", cluster, ...nodes.map((n) => `${n.name}=${n.address}`)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (l) => lines.push(l));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    void exited.then(() => reject(new Error(`the gate process exited before listening: ${lines.join("\n")}`)));
  });
  const { port, workerKey } = JSON.parse(first) as { port: number; workerKey: string };
  return {
    port,
    workerKey,
    lines,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
