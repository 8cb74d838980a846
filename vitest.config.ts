import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { defineConfig } from "vitest/config";

// Files that each take a minute (npm start, the chaos run) start first: on a clean clone (CI) vitest has no
// durations yet and runs larger files first, which put the 50 s docs commands file (54 lines) at the very end.
const SLOW_FIRST = [
  "test/chaos/chaos.test.ts",
  "test/e2e/start.test.ts",
  "test/e2e/course.test.ts",
  "test/docs/commands.test.ts",
  "test/e2e/status-page.test.ts",
  "test/citizen/failover.test.ts",
  "test/locations/convergence.test.ts",
];

class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = SLOW_FIRST.findIndex((p) => f.moduleId.endsWith(`/${p}`));
      return i < 0 ? SLOW_FIRST.length : i;
    };
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

// Two projects: "worker" runs inside workerd (KV from wrangler.toml) against
// real HTTP servers on loopback that test/worker/global-setup.ts starts in
// Node; "node" runs the agent, the simulated cluster and end-to-end suites.
export default defineConfig({
  test: {
    // Two files at a time (vitest's default on 2 cores is one): most files wait on sockets, timers and child
    // processes, not the CPU. Each file has its own loopback range, ports and state directories.
    maxWorkers: 2,
    sequence: { sequencer: SlowFirst },
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
          // One process runs file after file, so wrangler, miniflare and client-node load once per process,
          // not once per file: that loading was a third of the suite's time (2 s–9 s a file). Files share no
          // state: each stops what it started (afterAll/afterEach) on its own addresses, ports and directories,
          // and the shared modules hold only caches.
          isolate: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
