// Runs the machine's kubectl (v1.32) against a simulated cluster, with its
// own HOME and discovery cache so runs never share state.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

export const KUBECTL = "/usr/bin/kubectl";
export const haveKubectl = existsSync(KUBECTL);
const run = promisify(execFile);

export interface Kubectl {
  (...args: string[]): Promise<string>;
  fails(...args: string[]): Promise<string>;
  /** stdout and stderr of a run that must succeed. */
  both(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  dir: string;
  cleanup(): void;
}

export function kubectlFor(kubeconfig: string): Kubectl {
  const dir = mkdtempSync(join(tmpdir(), "edgelb-kubectl-"));
  const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, "cache"), HOME: dir };
  const both = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(KUBECTL, args, { env, timeout: 60_000 });
      return { stdout, stderr };
    } catch (e: any) {
      throw new Error(`kubectl ${args.join(" ")} failed: ${e.stderr || e.message}`);
    }
  };
  const k = (async (...args: string[]) => (await both(...args)).stdout) as Kubectl;
  k.both = both;
  k.fails = async (...args: string[]) => {
    const r = await run(KUBECTL, args, { env, timeout: 60_000 }).then(
      () => undefined,
      (e: any) => String(e.stderr),
    );
    if (r === undefined) throw new Error(`kubectl ${args.join(" ")} unexpectedly succeeded`);
    return r;
  };
  k.dir = dir;
  k.cleanup = () => rmSync(dir, { recursive: true, force: true });
  return k;
}
