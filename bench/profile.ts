// A CPU profile of one data-plane worker under load, taken in plain workerd
// through its inspector (`--inspector-addr`, Chrome DevTools protocol:
// Profiler.start / Profiler.stop), as the bench runs it. Prints the functions
// with the most self time and writes the .cpuprofile (open it in Chrome
// DevTools → Performance, or speedscope).
//
//   node --import tsx bench/profile.ts --worker edgelb-fetch [--seconds 5] [--path /] [--out /tmp/x.cpuprofile]
//   workers: edgelb-fetch, edgelb-socket, trivial-fetch, trivial-socket, floor
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { SimNode } from "../lab/cluster/sim-node.ts";
import { BENCH_HOST, benchSnapshot, pushSnapshot } from "./dataplane.ts";
import { cleanupAll, track } from "./lib/cleanup.ts";
import { pickLoadGenerator } from "./lib/loadgen.ts";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startPlainWorker } from "./workerd/index.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

/** Self time per function (name + place), largest first, as shares of all samples. Pure. */
export function selfTimes(profile: CpuProfile): { fn: string; share: number }[] {
  const total = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
  const by = new Map<string, number>();
  for (const n of profile.nodes) {
    const f = n.callFrame;
    const file = f.url ? f.url.slice(f.url.lastIndexOf("/") + 1) : "";
    const key = `${f.functionName || "(anonymous)"}${file ? ` ${file}:${f.lineNumber + 1}` : ""}`;
    by.set(key, (by.get(key) ?? 0) + (n.hitCount ?? 0));
  }
  return [...by].map(([fn, hits]) => ({ fn, share: hits / total })).sort((a, b) => b.share - a.share);
}

async function inspectorSocket(addr: string): Promise<WebSocket> {
  // workerd names each service's isolate by its service: ours is "main".
  const ws = new WebSocket(`ws://${addr}/main`);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return ws;
}

function rpc(ws: WebSocket) {
  let next = 1;
  const waiting = new Map<number, (r: { result?: unknown; error?: unknown }) => void>();
  ws.on("message", (d) => {
    const msg = JSON.parse(d.toString()) as { id?: number; result?: unknown; error?: unknown };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg);
  });
  return (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const id = next++;
      waiting.set(id, (r) => (r.error ? reject(new Error(`${method}: ${JSON.stringify(r.error)}`)) : resolve(r.result)));
      ws.send(JSON.stringify({ id, method, params }));
    });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      worker: { type: "string", default: "edgelb-fetch" },
      seconds: { type: "string", default: "5" },
      path: { type: "string", default: "/" },
      connections: { type: "string", default: "32" },
      out: { type: "string" },
      top: { type: "string", default: "40" },
    },
  });
  const addresses = [11, 12, 13].map((h) => `127.21.50.${h}`);
  const nodes: SimNode[] = [];
  for (const [i, address] of addresses.entries()) {
    const node = await SimNode.start({ name: `node-${i + 1}`, address, healthzPort: 0 });
    track(`simulated node ${address}`, () => node.stop());
    nodes.push(node);
  }
  const nodePort = await nodes[0]!.servePort(0);
  for (const n of nodes.slice(1)) await n.servePort(nodePort);
  const origin = `http://${addresses[0]}:${nodePort}`;
  const inspectorAddr = `127.0.0.1:${9300 + Math.floor(Math.random() * 600)}`;
  const which = values.worker!;
  const trivial: Record<string, string> = { "trivial-fetch": "index.ts", "trivial-socket": "socket.js", floor: "socket-floor.js" };
  const edge = which.startsWith("edgelb-") ? (which.slice(7) as "fetch" | "socket") : undefined;
  if (!edge && !trivial[which]) throw new Error(`unknown worker ${which}`);
  const worker = edge
    ? await startPlainWorker({
        name: which,
        entry: path.join(HERE, "../worker/index.ts"),
        kvBinding: "EDGELB_KV",
        vars: { EDGELB_TRANSPORT: edge, EDGELB_PUSH_TOKEN: "bench-push-token", EDGELB_CLUSTERS: "default", EDGELB_REQUEST_LOGS: "false" },
        inspectorAddr,
      })
    : await startPlainWorker({ name: which, entry: path.join(HERE, "trivial-proxy", trivial[which]!), vars: { BENCH_ORIGIN: origin }, inspectorAddr });
  track(`workerd ${which}`, () => worker.stop());
  if (edge) await pushSnapshot(worker, benchSnapshot(addresses, nodePort));
  const loadgen = pickLoadGenerator();
  const load = { url: worker.url + values.path, host: edge ? BENCH_HOST : undefined, connections: Number(values.connections), threads: 1 };
  await loadgen.run({ ...load, durationS: 1 }); // warm-up: compiled code, not the first requests

  const ws = await inspectorSocket(inspectorAddr);
  const call = rpc(ws);
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 100 });
  const cpu0 = worker.cpuSeconds();
  await call("Profiler.start");
  const result = await loadgen.run({ ...load, durationS: Number(values.seconds) });
  const { profile } = (await call("Profiler.stop")) as { profile: CpuProfile };
  const cpu = worker.cpuSeconds() - cpu0;
  ws.close();
  const out = values.out ?? `/tmp/edgelb-${which}.cpuprofile`;
  await writeFile(out, JSON.stringify(profile));
  process.stdout.write(
    `${which}: ${result.rps.toFixed(0)} req/s, ${result.errors} errors, workerd CPU ${((cpu / result.requests) * 1e6).toFixed(0)} µs/req (profiler on); profile ${out}\n`,
  );
  for (const { fn, share } of selfTimes(profile).slice(0, Number(values.top))) {
    process.stdout.write(`${(share * 100).toFixed(1).padStart(5)}%  ${fn}\n`);
  }
}

main().then(
  async () => {
    await cleanupAll();
    process.exit(0);
  },
  async (err: Error) => {
    process.stderr.write(`profile failed: ${err.stack ?? err.message}\n`);
    await cleanupAll();
    process.exit(1);
  },
);
