// The status page's Gateway API section in headless Chromium: the page's own
// script (worker/status-page/assets.ts) renders what the worker's status
// builder (worker/gateway/status) makes of a snapshot whose tenant-controlled
// strings are hostile. Every one must show as text; none may become markup.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildGatewayIndex } from "../../worker/gateway/index.ts";
import { gatewayStatus } from "../../worker/gateway/status/index.ts";
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from "../../worker/status-page/assets.ts";
import { validateSnapshot } from "../../worker/snapshot/schema.ts";
import { storefrontSnapshot } from "../fixtures/gateway-snapshot.ts";
import { dumpDom, ensureChromium } from "./chromium.ts";

const chromium = ensureChromium();
if (!chromium.path) console.warn(`gateway status page test skipped: ${chromium.reason}`);

const XSS_PATH = "/<img src=x onerror=alert(1)>";
const XSS_HEADER = "<script>alert(2)</script>";
const XSS_NAME = "<script>alert(3)</script>";
const XSS_HOST = '"><img src=x onerror=alert(4)>.example.com';

function statusJson(): unknown {
  const checked = validateSnapshot(
    storefrontSnapshot({
      cluster: "home",
      generation: 3,
      nodeAddress: "127.65.2.11",
      rule: {
        matches: [{ path: { type: "RegularExpression", value: XSS_PATH }, headers: [{ type: "Exact", name: "x-evil", value: XSS_HEADER }] }],
        backendRefs: [{ namespace: "shop", name: "web", port: 80, weight: 90 }, { invalid: "<b>no such Service</b>", weight: 10 }],
      },
      refused: [{ namespace: "shop", name: XSS_NAME, gateway: "edge/public", reason: "UnsupportedValue: not served: <iframe src=//evil>" }],
    }),
  );
  if (!checked.ok) throw new Error(checked.error);
  const snapshot = checked.snapshot;
  const gateway = gatewayStatus("home", snapshot, buildGatewayIndex([{ cluster: "home", snapshot }]))!;
  // The worker's schema refuses such a hostname; the page must be safe even if one ever got through.
  gateway.hostnames.push({ hostname: XSS_HOST, routes: [{ route: "shop/x", gateway: "edge/public", listener: null, rules: [{ matches: ["PathPrefix /"], backends: [], filters: [] }] }], moreRoutes: 0 });
  const now = new Date().toISOString();
  return {
    now,
    isolateStartedAt: now,
    settings: { clusters: ["home"], cacheTtlSeconds: 30, transport: "socket", requestLogs: false },
    clusters: [{ name: "home", generation: 3, publishedAt: now, ageSeconds: 0, loadedAt: now, checkedAt: now, source: "push", lastError: null, origins: { mode: "direct" }, nodes: [], services: [], gateway }],
  };
}

describe.skipIf(!chromium.path)("status page: Gateway API routes in headless Chromium", () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const body = JSON.stringify(statusJson());
    server = createServer((req, res) => {
      const files: Record<string, [string, string]> = {
        "/__edgelb/": [PAGE_HTML, "text/html; charset=utf-8"],
        "/__edgelb/status.js": [PAGE_JS, "text/javascript"],
        "/__edgelb/status.css": [PAGE_CSS, "text/css"],
        "/__edgelb/v1/status": [body, "application/json"],
      };
      const f = files[(req.url ?? "").split("?")[0]!];
      res.writeHead(f ? 200 : 404, { "content-type": f ? f[1] : "text/plain" });
      res.end(f ? f[0] : "not found");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.65.2.1", resolve));
    base = `http://127.65.2.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  it("shows hostname → route → matches and backends, and why a route is refused, with every hostile string as text", async () => {
    const html = await dumpDom(chromium.path!, `${base}/__edgelb/#token=t`);
    expect(html).toContain('data-loaded="true"');
    expect(html).toContain('data-role="gateway-routes"');
    expect(html).toMatch(/<tr data-host="shop\.example\.com" data-route="shop\/storefront"/);
    expect(html).toContain("shop/web:80 · weight 90");
    expect(html).toContain("invalid backendRef (500): &lt;b&gt;no such Service&lt;/b&gt; · weight 10");
    // Tenant strings are text: escaped in the serialized DOM, never elements.
    expect(html).toContain("RegularExpression /&lt;img src=x onerror=alert(1)&gt; · header x-evil=&lt;script&gt;alert(2)&lt;/script&gt;");
    expect(html).toMatch(/<tr data-role="route-refused" data-route="shop\/&lt;script&gt;alert\(3\)&lt;\/script&gt;">/);
    expect(html).toContain("UnsupportedValue: not served: &lt;iframe src=//evil&gt;");
    expect(html).toContain("&quot;&gt;&lt;img src=x onerror=alert(4)&gt;.example.com");
    expect(html).not.toMatch(/<img|<iframe|<b>no such/i);
    expect(html.match(/<script/g)).toHaveLength(1); // the page's own
  });
});
