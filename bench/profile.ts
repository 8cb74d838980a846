// A CPU profile of one data-plane worker under load, taken in plain workerd
// through its inspector (`--inspector-addr`, Chrome DevTools protocol:
// Profiler.start / Profiler.stop), as the bench runs it. Prints the functions
// with the most self time and writes the .cpuprofile (open it in Chrome
// DevTools → Performance, or speedscope).
//
//   node --import tsx bench/profile.ts --worker edgelb-fetch [--seconds 5] [--path /status/200] [--out /tmp/x.cpuprofile]
//   (default path: what section 1 asks every row, DATAPLANE_PATH)
//   workers: edgelb-fetch, edgelb-socket, edgelb-gate, trivial-fetch, trivial-socket, floor
// edgelb-gate: the socket transport with the snapshot's origins in gate mode and EDGELB_GATE_KEY set, so
// every request is signed and sent to a node gate (bench/gate-child.ts, one child process for the three);
// compare its tops with edgelb-socket's to see what signing costs workerd. --inclusive N lists the
// functions whose frames are on the stack most often (time spent in them and below them).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { SimNode } from "../lab/cluster/sim-node.ts";
import { BENCH_HOST, benchSnapshot, DATAPLANE_PATH, pushSnapshot } from "./dataplane.ts";
import { cleanupAll, track, trackChild } from "./lib/cleanup.ts";
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
    const key = frameName(n.callFrame);
    by.set(key, (by.get(key) ?? 0) + (n.hitCount ?? 0));
  }
  return [...by].map(([fn, hits]) => ({ fn, share: hits / total })).sort((a, b) => b.share - a.share);
}

function frameName(f: ProfileNode["callFrame"]): string {
  const file = f.url ? f.url.slice(f.url.lastIndexOf("/") + 1) : "";
  return `${f.functionName || "(anonymous)"}${file ? ` ${file}:${f.lineNumber + 1}` : ""}`;
}

/**
 * Inclusive time per function: the share of samples with that function anywhere on the stack (counted
 * once per sample even when it recurses), largest first. Pure.
 */
export function inclusiveTimes(profile: CpuProfile): { fn: string; share: number }[] {
  const total = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const by = new Map<string, number>();
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    const seen = new Set<string>();
    for (let x: number | undefined = n.id; x !== undefined; x = parent.get(x)) seen.add(frameName(byId.get(x)!.callFrame));
    for (const fn of seen) by.set(fn, (by.get(fn) ?? 0) + hits);
  }
  return [...by].map(([fn, hits]) => ({ fn, share: hits / total })).sort((a, b) => b.share - a.share);
}

/** The node gates (bench/gate-child.ts) in a child process; resolves to their port once they listen. */
async function startGates(nodes: { name: string; address: string }[], secret: string): Promise<number> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(HERE, "gate-child.ts"), ...nodes.map((n) => `${n.name}=${n.address}`)], {
    cwd: path.resolve(HERE, ".."),
    env: { ...process.env, EDGELB_BENCH_GATE_SECRET: secret, EDGELB_BENCH_GATE_CLUSTER: "default" },
    stdio: ["pipe", "pipe", "inherit"],
  });
  trackChild("node gates", child);
  return new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl !== -1) resolve((JSON.parse(out.slice(0, nl)) as { port: number }).port);
    });
    child.once("exit", (code) => reject(new Error(`the gates exited (${code})`)));
  });
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
      path: { type: "string", default: DATAPLANE_PATH },
      connections: { type: "string", default: "32" },
      out: { type: "string" },
      top: { type: "string", default: "40" },
      inclusive: { type: "string", default: "0" },
      "address-base": { type: "string", default: "127.21.50" },
    },
  });
  const addresses = [11, 12, 13].map((h) => `${values["address-base"]}.${h}`);
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
  const edgeKinds: Record<string, "fetch" | "socket"> = { "edgelb-fetch": "fetch", "edgelb-socket": "socket", "edgelb-gate": "socket" };
  const edge = edgeKinds[which];
  if (!edge && !trivial[which]) throw new Error(`unknown worker ${which}`);
  // Gate mode: the same worker, its snapshot's origins behind node gates, every request signed.
  const secret = randomBytes(32).toString("base64url");
  const gatePort = which === "edgelb-gate" ? await startGates(addresses.map((address, i) => ({ name: `node-${i + 1}`, address })), secret) : undefined;
  const worker = edge
    ? await startPlainWorker({
        name: which,
        entry: path.join(HERE, "../worker/index.ts"),
        kvBinding: "EDGELB_KV",
        vars: { EDGELB_TRANSPORT: edge, EDGELB_PUSH_TOKEN: "bench-push-token", EDGELB_CLUSTERS: "default", EDGELB_REQUEST_LOGS: "false", EDGELB_GATE_KEY: `bench:${secret}` },
        inspectorAddr,
      })
    : await startPlainWorker({ name: which, entry: path.join(HERE, "trivial-proxy", trivial[which]!), vars: { BENCH_ORIGIN: origin }, inspectorAddr });
  track(`workerd ${which}`, () => worker.stop());
  if (edge) await pushSnapshot(worker, gatePort === undefined ? benchSnapshot(addresses, nodePort) : { ...benchSnapshot(addresses, nodePort), origins: { mode: "gate", port: gatePort } });
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
  if (Number(values.inclusive) > 0) {
    process.stdout.write("inclusive (on the stack):\n");
    for (const { fn, share } of inclusiveTimes(profile).slice(0, Number(values.inclusive))) {
      process.stdout.write(`${(share * 100).toFixed(1).padStart(5)}%  ${fn}\n`);
    }
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
