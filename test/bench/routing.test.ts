// The routing bench's in-process request path must time real answers: the
// child runs the worker's modules in Node and fails when a request is not a
// 200 from the stub origin (or when the snapshot does not load), so a change
// in the worker that breaks the bench's harness shows up here, not as a
// silently wrong figure in bench/results.md.
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

it("the routing child measures a request path that answers 200 (10 nodes × 10 services)", async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--expose-gc", "--import", "tsx", "--import", path.join(ROOT, "bench/lib/no-sockets.ts"), path.join(ROOT, "bench/routing-child.ts"), "10", "10", "100"],
    { cwd: ROOT, timeout: 50_000 },
  );
  const line = stdout.split("\n").find((l) => l.startsWith("ROUTING_JSON "));
  expect(line).toBeDefined();
  const r = JSON.parse(line!.slice("ROUTING_JSON ".length)) as { request: { cpuUs: number; requests: number } };
  expect(r.request.requests).toBeGreaterThan(0);
  expect(r.request.cpuUs).toBeGreaterThan(0);
});
