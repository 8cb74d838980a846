// The status page at /__edgelb/ in headless Chromium, against the demo's
// whole system (simulated cluster, the worker in workerd, the agent): what it
// shows without a token, with a wrong one, with the link `npm start` prints,
// and after a node goes down.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serviceNodes, startDemo, workerStatus, type Demo } from "../../lab/demo/demo.ts";
import { FAULT_ANNOTATION } from "../../lab/demo/knobs.ts";
import { requestWithHost } from "../../lab/edge/start-worker.ts";
import { dumpDom, ensureChromium, screenshot } from "./chromium.ts";

const chromium = ensureChromium();
if (!chromium.path) console.warn(`status page test skipped: ${chromium.reason}`);

/** Per node row of a Service's table: node → state, as the page renders it. */
function rows(html: string, service: string): Record<string, { state: string; healthy: string; ejected: string }> {
  const start = html.indexOf(`data-service="${service}"`);
  if (start === -1) return {};
  const next = html.indexOf("data-service=", start + 1);
  const section = html.slice(start, next === -1 ? undefined : next);
  const out: Record<string, { state: string; healthy: string; ejected: string }> = {};
  for (const m of section.matchAll(/<tr data-node="([^"]+)" data-state="([^"]+)" data-healthy="([^"]+)" data-ejected="([^"]+)"/g)) {
    out[m[1]!] = { state: m[2]!, healthy: m[3]!, ejected: m[4]! };
  }
  return out;
}

function pill(html: string, service: string): string | undefined {
  const start = html.indexOf(`data-service="${service}"`);
  return /data-role="service-health">([^<]+)</.exec(html.slice(start))?.[1];
}

describe.skipIf(!chromium.path)("status page in headless Chromium", () => {
  const browser = chromium.path!;
  let demo: Demo;
  let stateDir: string;
  let page: string;

  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(tmpdir(), "edgelb-status-page-"));
    demo = await startDemo({
      port: 0,
      addressBase: "127.0.78",
      healthzPort: 0,
      stateDir,
      healthIntervalMs: 1_000, // slower than the traffic burst below
      agentLog: pino({ level: "silent" }),
    });
    page = `http://127.0.0.1:${demo.port}/__edgelb/`;
  });
  afterAll(async () => {
    await demo?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("asks for the token first and shows no data without it", async () => {
    const html = await dumpDom(browser, page);
    expect(html).toMatch(/<form id="login">/); // shown (no hidden attribute)
    expect(html).not.toContain("data-service=");
    expect(html).toContain('data-state="idle"');

    const wrong = await dumpDom(browser, `${page}#token=not-the-token`);
    expect(wrong).toMatch(/<p id="login-error" class="error">The worker refused that token\.<\/p>/);
    expect(wrong).not.toContain("data-service=");
  });

  it("a push token is not let in: the page asks for the read token", async () => {
    const html = await dumpDom(browser, `${page}#token=${demo.pushToken}`);
    expect(html).toMatch(/<p id="login-error" class="error">That token cannot read the status: use the read token \(EDGELB_READ_TOKEN\)\.<\/p>/);
    expect(html).not.toContain("data-service=");
  });

  it("is not served on an app's hostname: there /__edgelb/ is the app's", async () => {
    const res = await requestWithHost("127.0.0.1", demo.port, `web.localhost:${demo.port}`, "/__edgelb/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).not.toContain("text/html");
    expect(((await res.json()) as { node: string; path: string }).path).toBe("/__edgelb/");
  });

  it("the printed link logs in and shows clusters, Services, hostnames and nodes", async () => {
    expect(demo.statusPageUrl).toBe(`${page}#token=${demo.token}`);
    const html = await dumpDom(browser, demo.statusPageUrl);
    expect(html).toMatch(/<form id="login" hidden="">/);
    expect(html).toMatch(/<article class="cluster" data-cluster="demo" data-generation="\d+">/);
    expect(html).toContain(">cluster demo<");
    expect(html).toMatch(/published <b>\d+ s ago<\/b>/);
    expect(html).toContain(`href="http://web.localhost:${demo.port}/"`);
    expect(html).toContain(`href="http://api.localhost:${demo.port}/"`);
    expect(html).toContain("externalTrafficPolicy: Local");
    expect(rows(html, "default/web")).toEqual({
      "node-1": { state: "serving", healthy: "true", ejected: "false" },
      "node-2": { state: "serving", healthy: "true", ejected: "false" },
      "node-3": { state: "serving", healthy: "true", ejected: "false" },
    });
    expect(Object.keys(rows(html, "default/api"))).toEqual(["node-1", "node-2"]); // Local: nodes with pods
    expect(pill(html, "default/web")).toBe("3/3 nodes serving");
    expect(html).toContain('data-state="live"');
  });

  it("shows a node that went down as unhealthy and ejected", async () => {
    demo.cluster!.patch("Node", "node-2", { metadata: { annotations: { [FAULT_ANNOTATION]: "down" } } }, { namespace: "" });
    const node2 = demo.cluster!.node("node-2");
    const t0 = Date.now();
    while (node2.mode !== "refuse") {
      if (Date.now() - t0 > 5_000) throw new Error("the simulator did not take node-2 down");
      await new Promise((r) => setTimeout(r, 10));
    }
    // A burst of traffic meets the dead node before the agent's health checks
    // notice: the worker retries those requests elsewhere and ejects node-2.
    const burst = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const res = await requestWithHost("127.0.0.1", demo.port, "web.localhost", "/");
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(burst.every((s) => s === 200)).toBe(true);
    // Then the agent takes it out of rotation.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const web = serviceNodes(await workerStatus(demo.workerUrl, demo.token), "web");
      const n2 = web.find((n) => n.node === "node-2");
      if (n2 && !n2.healthy) {
        expect(n2.ejected).toBe(true);
        break;
      }
      if (Date.now() > deadline) throw new Error(`node-2 not shown down: ${JSON.stringify(web)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The ejection lasts 10 s; on a loaded machine Chromium can take longer than
    // that to render, so the page must show it exactly while it is in effect.
    const st = (await workerStatus(demo.workerUrl, demo.token)) as unknown as {
      clusters: { nodes: { name: string; origins: { ejected: boolean; ejectedUntil: string | null }[] }[] }[];
    };
    const origin = st.clusters[0]!.nodes.find((n) => n.name === "node-2")!.origins.find((o) => o.ejected);
    const ejectedUntil = origin?.ejectedUntil ? Date.parse(origin.ejectedUntil) : 0;
    const html = await dumpDom(browser, demo.statusPageUrl);
    const renderedBy = Date.now();
    const web = rows(html, "default/web");
    if (renderedBy < ejectedUntil) {
      expect(web["node-2"]).toEqual({ state: "ejected", healthy: "false", ejected: "true" });
      expect(html).toMatch(/ejected until \d/);
    } else {
      expect(web["node-2"]!.healthy).toBe("false");
      expect(["ejected", "unhealthy"]).toContain(web["node-2"]!.state);
    }
    expect(web["node-1"]!.state).toBe("serving");
    expect(web["node-3"]!.state).toBe("serving");
    expect(pill(html, "default/web")).toBe("2/3 nodes serving");
    expect(html).toContain("cannot connect to http://127.0.78.12:");
    expect(html).toMatch(/<title>⚠ \d degraded · edgelb status<\/title>/);
    if (process.env.EDGELB_SCREENSHOT) await screenshot(browser, demo.statusPageUrl, process.env.EDGELB_SCREENSHOT);
  });
});
