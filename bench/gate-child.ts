// The node gates of the gate bench rows, in a process of their own so their
// CPU time (/proc/<pid>/stat) is theirs alone. One gate per <node name>=<address> given,
// all on one port; the key comes from EDGELB_BENCH_GATE_SECRET. Prints
// {"port": N, "edge": "wrap" | "net"} once listening; then answers each line on stdin with
// {"forwarded": N}, the requests the gates forwarded so far (the bench checks
// that its gate rows really went through them); runs until killed.
import { createInterface } from "node:readline";
import { pino } from "pino";
import { KeyRing } from "../sync-agent/gate/keys/index.ts";
import { GATE_DEFAULTS, startGate, type Gate } from "../sync-agent/gate/main.ts";

const secret = process.env.EDGELB_BENCH_GATE_SECRET ?? "";
const keys = KeyRing.of({ bench: secret });
// The cluster the bench's worker signs for (EDGELB_CLUSTERS).
const clusterName = process.env.EDGELB_BENCH_GATE_CLUSTER ?? "default";
const log = pino({ level: "warn" }, pino.destination(2));
let port = 0;
const gates: Gate[] = [];
for (const arg of process.argv.slice(2)) {
  const [nodeName, address] = arg.split("=") as [string, string];
  const gate = await startGate(
    { ...GATE_DEFAULTS, listen: `${address}:${port}`, connect: "node", nodeIp: address, nodeName, clusterName, nodePorts: { min: 1024, max: 65535 }, metricsAddress: "", logFormat: "json", logLevel: "warn" },
    { log, keys },
  );
  gates.push(gate);
  port = gate.port;
}
// The edge path the gates use (--edge auto: wrap where this Node has it), for the bench's texts.
process.stdout.write(`${JSON.stringify({ port, edge: gates[0]?.edge })}\n`);
createInterface({ input: process.stdin }).on("line", async () => {
  let forwarded = 0;
  for (const g of gates) for (const v of (await g.metrics.forwarded.get()).values) forwarded += v.value;
  process.stdout.write(`${JSON.stringify({ forwarded })}\n`);
});
// A clean exit on SIGTERM, so --cpu-prof (EDGELB_BENCH_GATE_CPU_PROF) gets to write its profile.
process.once("SIGTERM", () => process.exit(0));
