// The course's LoadBalancer steps against `npm start`, exactly as its "Try
// it" text prints them, with the real kubectl and no simulator-specific flag
// or annotation: apply with validation on, create a Deployment, expose it as
// a LoadBalancer, watch the hostname arrive, scale to 0 (requests fail
// cleanly at the edge) and back, and a rolling restart under load with zero
// failed requests.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, KUBECTL, startLab, track, until } from "./npm-start.ts";
import { run } from "./process.ts";
import { NO_ENDPOINT_HOLD_MS } from "../../sync-agent/model/no-endpoint-hold.ts";

// This suite's own loopback /24 (in lab16's 127.24.0.0/16).
const BASE = "127.24.7";

afterEach(cleanup);

describe("the course's steps against npm start", () => {
  it("apply, create, expose, get svc -w, scale to 0 and back, rollout restart under load: zero failed requests", async () => {
    const { demo, port, stateDir, env, kubectl, get } = await startLab(BASE);
    const dir = path.dirname(stateDir);
    // What it tells the user is what this test does.
    for (const step of [
      "kubectl create deployment hello --image=edgelb/echo:1 --replicas=3 --port=8080",
      "kubectl expose deployment hello --type=LoadBalancer --port=80 --target-port=8080",
      "kubectl get service hello -w",
      "kubectl scale deployment hello --replicas=5",
      `while sleep 0.1; do curl -s -o /dev/null -w '%{http_code} ' http://hello.default.svc.localhost:${port}/; done`,
      "kubectl rollout restart deployment hello && kubectl rollout status deployment hello",
    ]) {
      expect(demo.output()).toContain(step);
    }
    const HELLO = "hello.default.svc.localhost";

    // kubectl apply -f, validation on (kubectl's default: strict).
    const manifest = path.join(dir, "shop.yaml");
    writeFileSync(
      manifest,
      [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata: {name: shop}",
        "spec:",
        "  replicas: 2",
        "  selector: {matchLabels: {app: shop}}",
        "  template:",
        "    metadata: {labels: {app: shop}}",
        "    spec: {containers: [{name: echo, image: 'edgelb/echo:7', ports: [{containerPort: 8080}]}]}",
        "---",
        "apiVersion: v1",
        "kind: Service",
        "metadata: {name: shop}",
        "spec: {type: LoadBalancer, selector: {app: shop}, ports: [{port: 80, targetPort: 8080}]}",
        "",
      ].join("\n"),
    );
    expect(await kubectl("apply", "-f", manifest)).toContain("deployment.apps/shop created");
    const shop = await until(async () => {
      const r = await get("shop.default.svc.localhost");
      return r.status === 200 ? JSON.parse(r.body) : undefined;
    }, "shop.default.svc.localhost to answer");
    expect(shop.version).toBe("7");

    // 1–3: create, expose, watch the hostname arrive.
    await kubectl("create", "deployment", "hello", "--image=edgelb/echo:1", "--replicas=3", "--port=8080");
    await kubectl("expose", "deployment", "hello", "--type=LoadBalancer", "--port=80", "--target-port=8080");
    // As the user runs it, after expose: the current row (maybe still <pending>), then each change.
    const watch = track(run("env", [...env, KUBECTL, "get", "service", "hello", "-w"]));
    await watch.waitFor(/hello\s+LoadBalancer\s+\S+\s+hello\.default\.svc\.localhost\s+80:\d+\/TCP/, "get svc -w to show the hostname", 30_000);
    await watch.kill();
    await demo.waitFor(/service default\/hello served at hello\.default\.svc\.localhost/, "the agent's line about hello", 10_000);
    const first = await until(async () => {
      const r = await get(HELLO);
      return r.status === 200 ? JSON.parse(r.body) : undefined;
    }, `${HELLO} to answer`);
    expect(first).toMatchObject({ namespace: "default", version: "1" });
    expect(first.pod).toMatch(/^hello-/);

    // 4: scale it, as printed: five pods answer through the edge.
    await kubectl("scale", "deployment", "hello", "--replicas=5");
    await kubectl("rollout", "status", "deployment", "hello", "--timeout=60s");
    const pods = new Set<string>();
    await until(async () => {
      const r = await get(HELLO);
      if (r.status === 200) pods.add(JSON.parse(r.body).pod);
      return pods.size === 5;
    }, "five distinct hello pods to answer", 30_000);

    // Then to 0: nothing serves; once the agent's hold on "no ready endpoint" has passed (NO_ENDPOINT_HOLD_MS), the
    // edge answers 503 (never a 200 from a stand-in, no node tried), then back.
    // A Local Service with no pod left has no backend at all: once the agent has pushed that, the edge answers 503.
    // Both scale down together, so their holds run at the same time (one hold of test time, not two).
    await kubectl("scale", "deployment", "hello", "--replicas=0");
    await kubectl("scale", "deployment", "api", "--replicas=0");
    await kubectl("wait", "--for=delete", "pod", "-l", "app=hello", "--timeout=30s");
    const answers503 = (host: string) =>
      until(async () => {
        const r = await get(host);
        return r.status === 503 ? r : undefined;
      }, `${host} to answer 503`, 20_000 + NO_ENDPOINT_HOLD_MS);
    const [none, noApi] = await Promise.all([answers503(HELLO), answers503("api.localhost")]);
    expect(none.body).toMatch(/^edgelb: no server is ready for this site/);
    expect(noApi.body).toMatch(/^edgelb: no server is ready for this site/);
    await demo.waitFor(/service default\/hello has no ready endpoint/, "the agent's line about hello's endpoints", 5_000);
    await kubectl("scale", "deployment", "api", "--replicas=2");
    await kubectl("scale", "deployment", "hello", "--replicas=3");
    await kubectl("rollout", "status", "deployment", "hello", "--timeout=60s");
    await until(async () => (await get(HELLO)).status === 200, `${HELLO} to answer again`);

    // 5–6: a load loop, and a rolling restart under it.
    const before = (await kubectl("get", "pods", "-l", "app=hello", "-o", "name")).trim().split("\n").sort();
    let stop = false;
    const failures: string[] = [];
    let ok = 0;
    const loop = async () => {
      while (!stop) {
        const r = await get(HELLO).catch((e: Error) => ({ status: 0, body: e.message }));
        if (r.status === 200) ok++;
        else failures.push(`${r.status} ${r.body}`);
      }
    };
    const loops = [loop(), loop()];
    try {
      await until(async () => ok >= 10, "the load loop to run");
      await kubectl("rollout", "restart", "deployment", "hello");
      expect(await kubectl("rollout", "status", "deployment", "hello", "--timeout=60s")).toContain('deployment "hello" successfully rolled out');
      // The old pods drain while terminating: keep the load on until they are gone.
      await kubectl("wait", "--for=delete", ...before, "--timeout=30s");
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    const after = (await kubectl("get", "pods", "-l", "app=hello", "-o", "name")).trim().split("\n").sort();
    expect(after).toHaveLength(3);
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    // The demo explains the controllers' steps next to the agent's and worker's lines.
    expect(demo.output()).toMatch(/deployment default\/hello restarted: a new ReplicaSet replaces its pods/);
    expect(demo.output()).toMatch(/pod default\/hello-\S+ on node-\d terminating: its endpoint is serving but not ready/);
    expect(demo.output()).toMatch(/deployment default\/hello rolled out: 3\/3 available, 3 updated/);
    expect(await kubectl("logs", "deploy/hello")).toMatch(/GET \/ 200 host=hello\.default\.svc\.localhost:\d+ via=node-\d/);

    demo.signal("SIGINT");
    await demo.exited;
    expect(demo.output()).toContain("stopped; nothing is left running");
  }, 240_000);
});
