// `npm start` as a user runs it: a child process in its own process group,
// driven with HTTP requests (the Host header picks the Service, like
// `curl http://web.localhost:PORT/`) and /usr/bin/kubectl with the kubeconfig
// it writes; Ctrl-C (SIGINT to the group) must leave nothing behind.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startCluster } from "../../lab/cluster/cluster.ts";
import { serviceNodes, type StatusJson } from "../../lab/demo/demo.ts";
import { requestWithHost } from "../../lab/edge/start-worker.ts";
import { cleanup, npmStart, startLab, tempDir as tempDirNamed, until } from "./npm-start.ts";
import { exec, freePort, portIsFree } from "./process.ts";

// This suite's own loopback /24 for the simulated nodes.
const BASE = "127.0.79";
const NODE_ADDRESSES = [`${BASE}.11`, `${BASE}.12`, `${BASE}.13`];

afterEach(cleanup);

const tempDir = () => tempDirNamed("edgelb-e2e-start-");

/** Whether `pid` runs (a zombie nobody has reaped yet has ended). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

describe("npm start", () => {
  it("runs cluster, worker and agent; traffic follows kubectl; Ctrl-C leaves nothing behind", async () => {
    const { demo, port, apiPort, healthzPort, stateDir, kubeconfig, kubectl, get } = await startLab(BASE);
    const statusLink = (await demo.waitFor(/Status page\s+(\S+)/, "the status page link", 1_000))[1]!;
    expect(kubeconfig).toBe(path.join(stateDir, "kubeconfig"));
    expect(statusLink).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/__edgelb/#token=[0-9a-f]{32}$`));
    const token = statusLink.split("#token=")[1]!;
    // The link carries the read token; the agent's push token is another one.
    expect(readFileSync(path.join(stateDir, "read-token"), "utf8").trim()).toBe(token);
    expect(readFileSync(path.join(stateDir, "push-token"), "utf8").trim()).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(path.join(stateDir, "push-token"), "utf8").trim()).not.toBe(token);
    // What it tells the user to try names this run's kubeconfig and port.
    expect(demo.output()).toContain(`curl http://web.localhost:${port}/`);
    expect(demo.output()).toContain(`kubectl --kubeconfig ${kubeconfig} cordon node-3`);

    // Which nodes answer `host` over n requests (each must be answered with 200).
    const answering = async (host: string, n = 9) => {
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        const r = await get(host);
        if (r.status !== 200) throw new Error(`${host}: HTTP ${r.status} ${r.body}`);
        seen.add(r.node!);
      }
      return [...seen].sort().join(",");
    };
    const status = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/__edgelb/v1/status`, { headers: { authorization: `Bearer ${token}` } });
      return (await res.json()) as StatusJson;
    };

    // The curl line it prints works as printed (curl resolves *.localhost to loopback).
    if (existsSync("/usr/bin/curl")) {
      const curl = await exec("/usr/bin/curl", ["-s", "--max-time", "10", `http://web.localhost:${port}/`]);
      expect(curl.code).toBe(0);
      expect(JSON.parse(curl.stdout).node).toMatch(/^node-[123]$/);
    }
    expect(await answering("web.localhost")).toBe("node-1,node-2,node-3");
    expect(await answering("api.localhost")).toBe("node-1,node-2"); // Local: only nodes with pods

    // The Local Service's Deployment scales to one pod: only its node serves; back to two, two nodes again.
    await kubectl("scale", "deployment", "api", "--replicas=1");
    await until(async () => (await kubectl("get", "pods", "-l", "app=api", "-o", "name")).trim().split("\n").length === 1, "one api pod");
    const kept = (await kubectl("get", "pods", "-l", "app=api", "-o", "jsonpath={.items[0].spec.nodeName}")).trim();
    await until(async () => (await answering("api.localhost")) === kept, `api traffic only to ${kept}, which keeps its pod`);
    await kubectl("scale", "deployment", "api", "--replicas=2");
    await until(async () => (await answering("api.localhost")) === "node-1,node-2", "api back on node-1 and node-2");
    expect(await kubectl("get", "service", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].hostname}")).toBe("web.localhost");

    // Cordon is not a load-balancer filter (upstream); the exclusion label is.
    await kubectl("cordon", "node-3");
    await kubectl("label", "node", "node-2", "node.kubernetes.io/exclude-from-external-load-balancers=true");
    await until(async () => (await answering("web.localhost")) === "node-1,node-3", "web to drop node-2 but keep cordoned node-3");
    expect(await answering("api.localhost")).toBe("node-1");
    await demo.waitFor(/node node-2 is not a backend/, "the agent's log line about node-2", 5_000);


    // A node goes down: requests keep succeeding (retried on another node),
    // the agent takes it out of rotation.
    await kubectl("annotate", "node", "node-1", "sim.edgelb.dev/fault=down");
    for (let i = 0; i < 4; i++) expect((await get("web.localhost")).status).toBe(200);
    await until(
      async () => serviceNodes(await status(), "web").find((n) => n.node === "node-1")?.healthy === false,
      "the worker to see node-1 unhealthy",
    );
    expect(await answering("web.localhost")).toBe("node-3");
    await demo.waitFor(/node node-1 failed its health check/, "the agent's log line about node-1", 5_000);
    expect(demo.output()).toMatch(/proxy\.retry .*node=node-1/);

    // It comes back.
    await kubectl("annotate", "node", "node-1", "sim.edgelb.dev/fault-");
    await until(async () => (await answering("web.localhost")) === "node-1,node-3", "node-1 back in rotation");

    // Deleting a Service removes its hostname at the edge.
    await kubectl("delete", "service", "web");
    await until(async () => (await get("web.localhost")).status === 404, "web.localhost to answer 404");
    expect((await get("web.localhost")).body).toMatch(/^edgelb: this hostname is not served here \(request [^)]+\)\n$/);
    await demo.waitFor(/service default\/web deleted/, "the agent's log line about the deletion", 5_000);

    const nodePort = Number(await kubectl("get", "service", "api", "-o", "jsonpath={.spec.ports[0].nodePort}"));
    expect(nodePort).toBeGreaterThanOrEqual(30000);

    // Ctrl-C.
    demo.signal("SIGINT");
    const exit = await demo.exited;
    // npm itself ends the way a shell expects after Ctrl-C: by SIGINT (130) once the demo exited.
    expect(exit.code === 0 || exit.code === 130 || exit.signal === "SIGINT", JSON.stringify(exit)).toBe(true);
    expect(demo.output()).toContain("stopped; nothing is left running");
    await until(async () => !demo.groupAlive(), "every process of the group to exit", 5_000);
    expect(await portIsFree("127.0.0.1", port)).toBe(true);
    expect(await portIsFree("127.0.0.1", apiPort)).toBe(true);
    for (const a of NODE_ADDRESSES) {
      expect(await portIsFree(a, healthzPort), `${a}:${healthzPort}`).toBe(true);
      expect(await portIsFree(a, nodePort), `${a}:${nodePort}`).toBe(true);
    }
    expect(existsSync(kubeconfig)).toBe(false); // the demo's credentials go with it
    expect(existsSync(path.join(stateDir, "push-token"))).toBe(false);
    expect(existsSync(path.join(stateDir, "read-token"))).toBe(false);
  }, 180_000);

  it("names a busy port in one line and exits non-zero", async () => {
    const port = await freePort();
    const blocker = (await import("node:net")).createServer();
    await new Promise<void>((r) => blocker.listen(port, "127.0.0.1", () => r()));
    try {
      // As if another demo ran in this directory: its files must survive.
      const stateDir = tempDir();
      writeFileSync(path.join(stateDir, "push-token"), "the other demo's token\n");
      const demo = npmStart(["--port", String(port), "--address-base", BASE, "--state-dir", stateDir]);
      const exit = await demo.exited;
      expect(exit.code).toBe(1);
      expect(readFileSync(path.join(stateDir, "push-token"), "utf8")).toBe("the other demo's token\n");
      expect(demo.stderr().trim()).toBe(
        `edgelb demo: 127.0.0.1:${port} is already in use (the worker's port). Stop what uses it, or pick another port: npm start -- --port 8788`,
      );
      await until(async () => !demo.groupAlive(), "every process of the group to exit", 5_000);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  }, 60_000);

  it("one npm start per --state-dir; a launcher killed hard (SIGKILL) leaves workerd running, the next npm start stops it; Ctrl-C during startup leaves nothing behind", async () => {
    const [port, apiPort] = [await freePort(), await freePort()];
    const stateDir = tempDir();
    const args = ["--port", String(port), "--api-port", String(apiPort), "--address-base", BASE, "--healthz-port", "0", "--state-dir", stateDir];
    const first = npmStart(args);
    // The lock names the launcher and, once the worker listens, its workerd.
    type Lock = { pid: number; children: { pid: number; command: string }[] };
    const lock = await until(async () => {
      const l = JSON.parse(readFileSync(path.join(stateDir, "lock"), "utf8")) as Lock;
      return l.children.some((c) => /workerd/.test(c.command)) && l;
    }, "the lock to record workerd", 60_000);
    const workerd = lock.children.find((c) => /workerd/.test(c.command))!.pid;

    // A second lab in the same directory would overwrite the first one's kubeconfig and tokens: refused.
    const second = npmStart(["--port", String(await freePort()), "--address-base", "127.86.9", "--state-dir", stateDir]);
    expect((await second.exited).code).toBe(1);
    expect(second.stderr().trim()).toBe(
      `edgelb demo: ${stateDir} is used by another npm start (pid ${lock.pid}, http://127.0.0.1:${port}): stop it, or give this one its own directory: npm start -- --state-dir <dir>`,
    );

    process.kill(lock.pid, "SIGKILL");
    await first.exited;
    expect(alive(workerd), "workerd outlives a launcher killed hard").toBe(true);
    const third = npmStart(args);
    await third.waitFor(
      new RegExp(`cleaned up after an earlier npm start that did not stop \\(pid ${lock.pid}\\): stopped the process(es)? it left running \\(pid [0-9, ]*\\b${workerd}\\b`),
      "the cleanup line",
      60_000,
    );
    expect(alive(workerd)).toBe(false);
    // The orphan's port is free again: the new lab gets past the port check and starts its cluster.
    // The simulated cluster, workerd and the files exist by now; the agent is about to start: Ctrl-C.
    await third.waitFor(/simulated node node-1 .* answers normally/, "the simulated nodes", 60_000);
    third.signal("SIGINT");
    await third.exited;
    await until(async () => !third.groupAlive(), "every process of the group to exit", 5_000);
    expect(await portIsFree("127.0.0.1", port)).toBe(true);
    expect(await portIsFree("127.0.0.1", apiPort)).toBe(true);
    for (const f of ["kubeconfig", "push-token", "lock"]) expect(existsSync(path.join(stateDir, f)), f).toBe(false);
  }, 150_000);

  it("--kubeconfig: a real cluster's API server that does not answer gets one clear message", async () => {
    const dir = tempDir();
    const dead = await freePort(); // nothing listens there
    const kubeconfig = path.join(dir, "config");
    writeFileSync(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: home",
        "  cluster:",
        `    server: https://127.0.0.1:${dead}`,
        "contexts:",
        "- name: home",
        "  context: {cluster: home, user: me}",
        "users:",
        "- name: me",
        "  user: {token: abc}",
        "current-context: home",
        "",
      ].join("\n"),
    );
    const port = await freePort();
    const demo = npmStart(["--kubeconfig", kubeconfig, "--port", String(port), "--state-dir", path.join(dir, "state")]);
    const exit = await demo.exited;
    expect(exit.code).toBe(1);
    expect(demo.output()).toContain(`starting against the cluster in ${kubeconfig}`);
    expect(demo.stderr()).toContain(`edgelb demo: cannot reach the Kubernetes API server https://127.0.0.1:${dead} (context "home" of ${kubeconfig}): ECONNREFUSED.`);
    expect(await portIsFree("127.0.0.1", port)).toBe(true);
    await until(async () => !demo.groupAlive(), "every process of the group to exit", 5_000);
  }, 60_000);

  it("--kubeconfig: serves a cluster's edgelb-class Services as <name>.<namespace>.localhost and writes nothing to it", async () => {
    // A cluster the demo did not start stands in for a real one.
    const cluster = await startCluster({ standIn: true, nodes: 2, addressBase: "127.0.80" }); // kube-proxy's usual :10256
    try {
      const svc = (name: string, cls?: string) => ({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace: "shop" },
        spec: { type: "LoadBalancer", ...(cls ? { loadBalancerClass: cls } : {}), selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
      });
      cluster.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } });
      cluster.create(svc("cart", "edgelb.dev/worker"));
      cluster.create(svc("other")); // no class: maybe another controller's
      const port = await freePort();
      const demo = npmStart(["--kubeconfig", cluster.kubeconfigPath, "--port", String(port), "--state-dir", tempDir()]);
      await demo.waitFor(/edgelb demo is ready/, "the ready banner", 90_000);
      // The instructions follow the banner; under load they arrive in a later chunk.
      await demo.waitFor(/Ctrl-C stops everything/, "the end of the instructions", 30_000);
      expect(demo.output()).toContain(`Cluster       real, from ${cluster.kubeconfigPath} (read-only`);
      const get = async (host: string) => {
        const res = await requestWithHost("127.0.0.1", port, host, "/");
        return { status: res.status, node: res.headers.get("x-edgelb-node"), body: await res.text() };
      };
      const served = await until(async () => {
        const r = await get("cart.shop.localhost");
        return r.status === 200 ? r : undefined;
      }, "cart.shop.localhost to be served");
      expect(served.node).toMatch(/^node-[12]$/);
      expect((await get("other.shop.localhost")).status).toBe(404);
      // Read-only: no status, no finalizer, no Lease, no Events.
      const cart = cluster.get("Service", "cart", "shop");
      expect(cart.status?.loadBalancer?.ingress ?? []).toEqual([]);
      expect(cart.metadata.finalizers ?? []).toEqual([]);
      expect(cluster.list("Lease")).toEqual([]);
      expect(cluster.list("Event")).toEqual([]);
      demo.signal("SIGINT");
      await demo.exited;
      expect(demo.output()).toContain("stopped; nothing is left running");
      expect(await portIsFree("127.0.0.1", port)).toBe(true);
    } finally {
      await cluster.stop();
    }
  }, 180_000);
});
