import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Two projects: "worker" runs inside workerd (KV from wrangler.toml) against
// real HTTP servers on loopback that test/worker/global-setup.ts starts in
// Node; "node" runs the agent, the simulated cluster and end-to-end suites.
export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // EDGELB_FAST_HOLD 0: the fast path polls here, so a test request's waitUntil (awaited by the
              // tests) never holds a 25 s check; held checks have their own tests (worker/config/fast).
              bindings: { EDGELB_PUSH_TOKEN: "test-push-token", EDGELB_CLUSTERS: "default,east,west", EDGELB_FAST_HOLD: "0" },
            },
          }),
        ],
        test: {
          name: "worker",
          include: ["worker/**/*.test.ts", "test/worker/**/*.test.ts"],
          globalSetup: [
            "test/worker/global-setup.ts",
            "test/worker/socket-origins.setup.ts",
            "test/worker/edge-http.setup.ts",
            "test/worker/request-path.setup.ts",
            "test/worker/gate.setup.ts",
            "test/worker/hedge.setup.ts",
          ],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: "node",
          environment: "node",
          include: ["sync-agent/**/*.test.ts", "test/**/*.test.ts"],
          exclude: ["test/worker/**", "node_modules/**"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
