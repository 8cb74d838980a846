// `npm start -- --clusters 2` (issue 18): two simulated clusters, two agents,
// one local worker in local mode. Steering by a test request.cf header, and
// the documented "take a cluster down" step with zero failed requests.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dumpDom, ensureChromium } from "../e2e/chromium.ts";
import { waitFor } from "../agent/harness.ts";
import { haveKubectl } from "./kubectl-env.ts";
import { agentLogger } from "../../lab/demo/logs.ts";
import { multiClusterInstructions, SAMPLE_CLIENTS, SHOP_HOSTNAME, startMultiClusterDemo, type MultiClusterDemo } from "../../lab/demo/multi-cluster.ts";

let lab: MultiClusterDemo;
let stateDir: string;
/** The agents' lines as `npm start` prints them. */
const agentLines: string[] = [];
beforeAll(async () => {
  stateDir = mkdtempSync(path.join(tmpdir(), "edgelb-multi-"));
  // --host: the worker listens on an address other than 127.0.0.1; the agents push to it there.
  lab = await startMultiClusterDemo({ clusters: 2, host: "127.27.2.1", port: 0, addressBase: "127.27.2", healthzPort: 0, stateDir, healthIntervalMs: 300, agentLog: agentLogger({ line: (l) => agentLines.push(l), color: false }), timeoutMs: 45_000 });
}, 90_000);
afterAll(async () => {
  await lab?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

async function shop(cf?: object): Promise<{ status: number; node?: string; pod?: string; version?: string }> {
  const res = await lab.edge.request(SHOP_HOSTNAME, "/", cf ? { headers: { "x-edgelb-test-cf": JSON.stringify(cf) } } : {});
  if (res.status !== 200) return { status: res.status };
  const { node, pod, version } = (await res.json()) as { node: string; pod?: string; version?: string };
  return { status: 200, node, pod, version };
}

async function annotate(cluster: MultiClusterDemo["clusters"][number], node: string, fault: string | null): Promise<void> {
  const res = await fetch(`${cluster.sim.url}/api/v1/nodes/${node}`, {
    method: "PATCH",
    headers: { "content-type": "application/merge-patch+json" },
    body: JSON.stringify({ metadata: { annotations: { "sim.edgelb.dev/fault": fault } } }),
  });
  expect(res.status).toBe(200);
}

/** Runs the printed instruction line matching `re` (after any "undo:") with bash from the working directory, as a reader would; its stdout. */
async function printedCommand(re: RegExp): Promise<string> {
  const lines = multiClusterInstructions(lab, { color: false }).map((l) => l.trim().replace(/^undo:\s+/, ""));
  const line = lines.find((l) => re.test(l));
  expect(line, `a printed line matching ${re}`).toBeDefined();
  const home = mkdtempSync(path.join(tmpdir(), "edgelb-multi-kubectl-"));
  try {
    const { stdout } = await promisify(execFile)("bash", ["-c", line!], { env: { ...process.env, HOME: home, KUBECACHEDIR: path.join(home, "cache") }, timeout: 60_000 });
    return stdout;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

describe("npm start -- --clusters 2 --host 127.27.2.1", () => {
  it("the agents' pushes reach the worker on its --host address: both clusters serve", async () => {
    const status = await fetch(`${lab.edge.url}/__edgelb/v1/status`, { headers: { authorization: `Bearer ${lab.token}` } });
    expect(status.status).toBe(200);
    const body = (await status.json()) as { clusters: { name: string; generation: number | null }[] };
    expect(body.clusters.map((c) => [c.name, c.generation !== null])).toEqual([["eu", true], ["us", true]]);
  });

  it("prints how to steer and how to take a cluster down", () => {
    const text = multiClusterInstructions(lab, { color: false }).join("\n");
    expect(text).toContain("x-edgelb-test-cf");
    expect(text).toContain("annotate node eu-node-$n sim.edgelb.dev/fault=down");
    expect(text).toContain(`kubeconfig-eu`);
    // Never a path climbing out of the working directory (../../tmp/…): the state dir here is absolute.
    expect(text).toContain(`--kubeconfig ${path.join(stateDir, "kubeconfig-eu")} annotate`);
  });

  it("its curl commands reach the worker on its --host and port, naming shop.localhost in the Host header", async () => {
    const text = multiClusterInstructions(lab, { color: false }).join("\n");
    expect(text).toContain(`-H 'Host: ${SHOP_HOSTNAME}' http://127.27.2.1:${lab.port}/`);
    expect(text).not.toContain(`http://${SHOP_HOSTNAME}:`); // 127.0.0.1: nothing there, or someone else's lab
    const answer = JSON.parse(await printedCommand(/^curl -s -H 'x-edgelb-test-cf: .*"52\.52"/)) as { node: string };
    expect(answer.node).toMatch(/^eu-node-/);
  });

  it("each agent's log lines say which cluster they are about", () => {
    expect(agentLines.find((l) => /^\S+ agent\s+INFO\s+eu: pushed generation/.test(l))).toBeDefined();
    expect(agentLines.find((l) => /^\S+ agent\s+INFO\s+us: pushed generation/.test(l))).toBeDefined();
    expect(agentLines.filter((l) => /pushed generation/.test(l) && !/INFO\s+(eu|us): /.test(l))).toEqual([]);
  });

  it("steers by the test location header: Berlin to eu, New York to us", async () => {
    expect((await shop(SAMPLE_CLIENTS.Berlin)).node).toMatch(/^eu-node-/);
    expect((await shop(SAMPLE_CLIENTS["New York"])).node).toMatch(/^us-node-/);
  });

  it("shop is a Deployment in each cluster, as the course's apps are: its pods answer, one per node, no simulator annotation", async () => {
    for (const c of lab.clusters) {
      const svc = c.sim.get("Service", "shop");
      expect(Object.keys(svc.metadata.annotations ?? {}).filter((k) => k.startsWith("sim.edgelb.dev/"))).toEqual([]);
      await waitFor(() => c.sim.get("Deployment", "shop").status?.readyReplicas === 3, `${c.name}'s shop Deployment ready`);
      const pods = c.sim.list("Pod", "default").filter((p) => p.metadata.labels?.app === "shop");
      expect(new Set(pods.map((p) => p.spec.nodeName)).size).toBe(3);
    }
    const berlin = await shop(SAMPLE_CLIENTS.Berlin);
    expect(berlin.pod).toMatch(/^shop-[a-z0-9]+-[a-z0-9]{5}$/);
    expect(berlin.version).toBe("1");
    expect(lab.clusters[0]!.sim.list("Pod", "default").map((p) => p.metadata.name)).toContain(berlin.pod);
  });

  const chromium = ensureChromium();
  it.skipIf(!chromium.path)("the status page lists shop.localhost's clusters in their order for the viewer's location", async () => {
    const html = await dumpDom(chromium.path!, lab.statusPageUrl);
    expect(html).toContain(">hostnames served by several clusters<");
    // Local workerd's stand-in request.cf is Austin, Texas: Ashburn (us) is nearer than Frankfurt (eu).
    expect(html).toMatch(/order shown for <b>US NA 30\.2713,-97\.7426<\/b>/);
    const rows = [...html.matchAll(/<tr data-host="shop\.localhost" data-cluster="([^"]+)" data-state="([^"]+)">.*?<span class="pill [^"]+">([^<]+)</g)].map((m) => [m[1], m[2], m[3]]);
    expect(rows).toEqual([
      ["us", "ok", "serves"],
      ["eu", "ok", "fallback 1"],
    ]);
    expect(html).toContain("<td>proximity</td>");
  });

  it("moves Berlin's requests to us with zero failures when every eu node goes down", async () => {
    const eu = lab.clusters[0]!;
    const results: { status: number; node?: string }[] = [];
    let stop = false;
    const clients = Array.from({ length: 4 }, async () => {
      while (!stop) results.push(await shop(SAMPLE_CLIENTS.Berlin));
    });
    while (results.length < 20) await new Promise((r) => setTimeout(r, 10));
    // The line npm start prints, run as printed (bash, the real kubectl); through the API without kubectl.
    if (haveKubectl) await printedCommand(/^for n in .* sim\.edgelb\.dev\/fault=down; done$/);
    else await Promise.all(eu.sim.nodes.map((n) => annotate(eu, n.name, "down")));
    expect(eu.sim.nodes.every((n) => eu.sim.get("Node", n.name, "").metadata.annotations?.["sim.edgelb.dev/fault"] === "down")).toBe(true);
    // Until the eu agent reports its nodes down, and for a while after.
    const deadline = Date.now() + 30_000;
    let after = 0;
    while (after < 40 && Date.now() < deadline) {
      const n = results.length;
      await new Promise((r) => setTimeout(r, 50));
      if (results.slice(n).every((x) => x.node?.startsWith("us-node-"))) after += results.length - n;
    }
    stop = true;
    await Promise.all(clients);
    if (haveKubectl) await printedCommand(/^for n in .* sim\.edgelb\.dev\/fault-; done$/);
    else await Promise.all(eu.sim.nodes.map((n) => annotate(eu, n.name, null)));
    expect(eu.sim.nodes.some((n) => eu.sim.get("Node", n.name, "").metadata.annotations?.["sim.edgelb.dev/fault"])).toBe(false);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(results.slice(0, 20).every((r) => r.node?.startsWith("eu-node-"))).toBe(true);
    expect(results.at(-1)!.node).toMatch(/^us-node-/);
  }, 60_000);
});
