// `npm run test:gate-image-node`: the node gate's test suite on the Node the image ships (the release
// bench/lib/image-node pins and section 1g measures), on both edge paths. `npm test` runs on the
// machine's Node; the gate's fast path rests on Node internals (docs/gate.md#costs-and-limits), so a
// change of the image's Node is checked with this before it ships.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { imageNodeHere } from "./index.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const node = imageNodeHere(ROOT);
process.stderr.write(`gate tests on Node ${node.version}: ${node.source}\n`);
if (!node.imageMajor) {
  process.stderr.write(`not the image's Node major release: set EDGELB_BENCH_GATE_NODE to one\n`);
  process.exit(2);
}
const vitest = path.join(ROOT, "node_modules", "vitest", "vitest.mjs");
const suites = ["test/gate", "sync-agent/gate"];
let failed = false;
for (const edge of ["wrap", "net"]) {
  process.stderr.write(`\n== the gate's suite, --edge ${edge}, Node ${node.version} ==\n`);
  const r = spawnSync(node.path, [vitest, "run", "--project", "node", ...suites], { cwd: ROOT, stdio: "inherit", env: { ...process.env, EDGELB_TEST_GATE_EDGE: edge } });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
