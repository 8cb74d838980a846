// The chaos suite's node gates, in a process of their own as in production (a DaemonSet pod per
// node), so their work does not starve the fake API server, the simulated nodes and the traffic
// that share the test's process (at load 17 the API server answered the agent's Lease after > 2 s:
// leadership flapped and no push went out for 25 s). One gate per <node name>=<address> given, all
// on one port, for cluster argv[2]. Prints {"port": N, "workerKey": "id:secret"} once listening.
import { pino } from "pino";
import { startDemoGates } from "../../lab/demo/gates.ts";

const [cluster, ...pairs] = process.argv.slice(2);
const nodes = pairs.map((p) => {
  const [name, address] = p.split("=") as [string, string];
  return { name, address };
});
const gates = await startDemoGates(nodes, pino({ level: "warn" }, pino.destination(2)), 0, cluster!);
process.stdout.write(`${JSON.stringify({ port: gates.port, workerKey: gates.workerKey })}\n`);
process.once("SIGTERM", () => process.exit(0));
