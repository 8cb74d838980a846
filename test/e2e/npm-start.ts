// `npm start` as the e2e suites drive it: on free ports, its own loopback
// /24 and a temporary state directory, waited on until it has printed its
// instructions; kubectl with the kubeconfig it wrote (as `export KUBECONFIG=…`
// does), and requests through its worker by Host. Everything a suite starts
// here is stopped and removed by `cleanup()` (call it in afterEach).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { requestWithHost } from "../../lab/edge/start-worker.ts";
import { exec, freePort, run, type Run } from "./process.ts";

export const KUBECTL = "/usr/bin/kubectl";

const runs: Run[] = [];
const dirs: string[] = [];

/** Kills what the suite started (whole process groups) and removes its directories. */
export async function cleanup(): Promise<void> {
  for (const r of runs.splice(0)) await r.kill();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A temporary directory, removed by cleanup(). */
export function tempDir(prefix = "edgelb-e2e-"): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** `npm start -- …args`, killed by cleanup(). */
export function npmStart(args: string[]): Run {
  return track(run("npm", ["start", "--", ...args]));
}

/** Any command the suite runs alongside (kubectl -w), killed by cleanup(). */
export function track(r: Run): Run {
  runs.push(r);
  return r;
}

/** Polls `check` until it returns something (not undefined/false); errors count as "not yet". */
export async function until<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Lab {
  demo: Run;
  port: number;
  apiPort: number;
  healthzPort: number;
  stateDir: string;
  kubeconfig: string;
  /** The environment a user's second terminal has after `export KUBECONFIG=…` (a private kubectl cache). */
  env: string[];
  /** kubectl …args; fails the test on a non-zero exit. */
  kubectl(...args: string[]): Promise<string>;
  /** GET / through the worker with this Host. */
  get(host: string): Promise<{ status: number; node: string | null; body: string }>;
}

/** A fresh `npm start` on its own ports and `addressBase`, ready once it has printed its instructions. */
export async function startLab(addressBase: string, timeoutMs = 90_000): Promise<Lab> {
  const [port, apiPort, healthzPort] = [await freePort(), await freePort(), await freePort()];
  const dir = tempDir("edgelb-e2e-lab-");
  const stateDir = path.join(dir, "state");
  const demo = npmStart(["--port", String(port), "--api-port", String(apiPort), "--address-base", addressBase, "--healthz-port", String(healthzPort), "--state-dir", stateDir]);
  await demo.waitFor(/edgelb demo is ready/, "the ready banner", timeoutMs);
  // The instructions follow the banner; under load they arrive in a later chunk.
  await demo.waitFor(/Ctrl-C stops everything/, "the end of the instructions", 30_000);
  const kubeconfig = (await demo.waitFor(/Kubeconfig\s+(\S+)/, "the kubeconfig path", 1_000))[1]!;
  const env = [`KUBECONFIG=${kubeconfig}`, `HOME=${dir}`, `KUBECACHEDIR=${dir}/cache`];
  return {
    demo,
    port,
    apiPort,
    healthzPort,
    stateDir,
    kubeconfig,
    env,
    async kubectl(...args) {
      const r = await exec("env", [...env, KUBECTL, ...args], 60_000);
      expect(r.code, `kubectl ${args.join(" ")}: ${r.stderr}`).toBe(0);
      return r.stdout;
    },
    async get(host) {
      const res = await requestWithHost("127.0.0.1", port, `${host}:${port}`, "/");
      return { status: res.status, node: res.headers.get("x-edgelb-node"), body: await res.text() };
    },
  };
}
