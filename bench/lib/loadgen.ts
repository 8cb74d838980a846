// The load generator: wrk when installed (C, cheap on a 2-core box), else
// autocannon from node_modules. Both run as child processes with a fixed
// connection count and report requests/s, p50/p99 latency and errors.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { trackChild } from "./cleanup.ts";
import type { Placement } from "./placement/index.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");

export interface LoadOptions {
  url: string;
  /** Host header to send (edgelb routes by it). */
  host?: string;
  /** More request header fields (name → value). */
  headers?: Readonly<Record<string, string>>;
  connections: number;
  threads: number;
  durationS: number;
  /** A request not answered within this counts as an error (default 5 s). */
  timeoutS?: number;
}

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Bytes read from the target (heads and bodies, partial answers included). */
  bytes: number;
  /** Socket errors, timeouts and 4xx/5xx answers (wrk does not count 3xx; the row probes require 200). */
  errors: number;
}

export interface LoadGenerator {
  name: string;
  run(opts: LoadOptions): Promise<LoadResult>;
}

function findOnPath(bin: string, extra: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter), ...extra];
  for (const d of dirs) {
    const p = path.join(d, bin);
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

export function findBinary(bin: string): string | undefined {
  return findOnPath(bin, ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"]);
}

function runChild(cmd: string, args: string[], what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    const untrack = trackChild(what, child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      void untrack();
      if (code === 0) resolve(out);
      else reject(new Error(`${what} exited with ${signal ?? code}: ${(err || out).slice(-500)}`));
    });
  });
}

/** The load generator runs on the CPUs of everything but workerd when processes are pinned. */
function placed(placement: Placement | undefined, cmd: string, args: string[]): [string, string[]] {
  return placement ? placement.command("rest", cmd, args) : [cmd, args];
}

function wrk(bin: string, placement?: Placement): LoadGenerator {
  return {
    name: `wrk (${bin})`,
    async run(o) {
      const args = [
        `-t${o.threads}`,
        `-c${o.connections}`,
        `-d${o.durationS}s`,
        "--timeout",
        `${o.timeoutS ?? 5}s`,
        "-s",
        path.join(HERE, "wrk-report.lua"),
        ...(o.host ? ["-H", `Host: ${o.host}`] : []),
        ...Object.entries(o.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
        o.url,
      ];
      const out = await runChild(...placed(placement, bin, args), "wrk");
      const line = out.split("\n").find((l) => l.startsWith("BENCH_JSON "));
      if (!line) throw new Error(`wrk printed no report: ${out.slice(-500)}`);
      const j = JSON.parse(line.slice("BENCH_JSON ".length)) as Record<string, number>;
      const errors = j.connect! + j.read! + j.write! + j.status! + j.timeout!;
      return {
        rps: j.requests! / (j.durationUs! / 1e6),
        p50Ms: j.p50! / 1000,
        p99Ms: j.p99! / 1000,
        requests: j.requests!,
        bytes: j.bytes!,
        errors,
      };
    },
  };
}

function autocannon(placement?: Placement): LoadGenerator {
  const cli = path.join(ROOT, "node_modules/autocannon/autocannon.js");
  return {
    name: "autocannon (node_modules)",
    async run(o) {
      const args = [cli, "--json", "-c", String(o.connections), "-d", String(o.durationS), "-t", String(o.timeoutS ?? 5), ...(o.host ? ["-H", `host=${o.host}`] : []), ...Object.entries(o.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}=${v}`]), o.url];
      const out = await runChild(...placed(placement, process.execPath, args), "autocannon");
      const j = JSON.parse(out.slice(out.indexOf("{"))) as {
        requests: { total: number; average: number };
        throughput: { total: number };
        latency: { p50: number; p99: number };
        duration: number;
        errors: number;
        timeouts: number;
        non2xx: number;
      };
      return {
        rps: j.requests.total / j.duration,
        p50Ms: j.latency.p50,
        p99Ms: j.latency.p99,
        requests: j.requests.total,
        bytes: j.throughput.total,
        errors: j.errors + j.timeouts + j.non2xx,
      };
    },
  };
}

/** wrk when installed, else autocannon. BENCH_LOADGEN=autocannon forces the fallback. */
export function pickLoadGenerator(placement?: Placement): LoadGenerator {
  const w = process.env.BENCH_LOADGEN === "autocannon" ? undefined : findBinary("wrk");
  return w ? wrk(w, placement) : autocannon(placement);
}
