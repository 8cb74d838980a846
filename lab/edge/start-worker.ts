// Runs the real edge worker in plain workerd through the Miniflare API: the
// bundle wrangler would deploy, the bindings from wrangler.toml (KV, vars),
// local KV storage. Used by node-side end-to-end suites, `npm start` and the
// benchmark. Not `wrangler dev`: its inspector slows every subrequest ~15x.
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { Readable } from "node:stream";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

for (const [k, v] of Object.entries({
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
})) {
  process.env[k] ??= v;
}

export interface EdgeWorkerOptions {
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Listen port; 0 (default) picks a free one. */
  port?: number;
  /** Overrides for [vars] and secrets, e.g. EDGELB_PUSH_TOKEN. */
  vars?: Record<string, string>;
  /** Directory for KV data that survives restarts; in-memory when absent. */
  persistDir?: string;
  /** Entry module; default the worker's `main` from wrangler.toml (worker/local-lab.ts with localMode). */
  entry?: string;
  /** The local lab's mode: the x-edgelb-test-cf header stands in for request.cf (never in a deployed worker). */
  localMode?: boolean;
  /** Forward the worker's console output (its JSON log lines) here. */
  onLog?: (line: string) => void;
}

export interface EdgeWorker {
  /** Base URL, e.g. http://127.0.0.1:8787 */
  url: string;
  port: number;
  mf: Miniflare;
  /** Sends a request to the worker with the given Host header. */
  request(host: string, pathAndQuery: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

/** A port that is free on `host` right now (the kernel picks it). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Bundles an entry module the way wrangler does (ESM, workerd conditions). */
export async function bundleWorker(entry: string, outdir: string): Promise<string> {
  const outfile = path.join(outdir, "worker.js");
  await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    external: ["cloudflare:*", "node:*"],
    outfile,
    logLevel: "silent",
  });
  return outfile;
}

/**
 * A real HTTP request to address:port with a chosen Host header, as curl
 * `-H "Host: …"` would send it (Node's fetch() does not let a caller set Host).
 */
export function requestWithHost(
  address: string,
  port: number,
  hostHeader: string,
  pathAndQuery: string,
  init: RequestInit = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    headers.host = hostHeader;
    const req = http.request(
      { host: address, port, method: init.method ?? "GET", path: pathAndQuery, headers, signal: init.signal ?? undefined },
      (res) => {
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) for (const x of v) out.append(k, x);
          else if (v !== undefined) out.set(k, v);
        }
        const nullBody = res.statusCode === 204 || res.statusCode === 304 || init.method === "HEAD";
        if (nullBody) res.resume();
        resolve(
          new Response(nullBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
            status: res.statusCode ?? 502,
            headers: out,
          }),
        );
      },
    );
    req.on("error", reject);
    const body = init.body;
    if (body === undefined || body === null) req.end();
    else if (typeof body === "string" || body instanceof Uint8Array) req.end(body);
    else if (body instanceof ArrayBuffer) req.end(Buffer.from(body));
    else if (body instanceof ReadableStream) Readable.fromWeb(body as never).pipe(req);
    else reject(new TypeError("requestWithHost: unsupported body type"));
  });
}

export async function startEdgeWorker(opts: EdgeWorkerOptions = {}): Promise<EdgeWorker> {
  const config = unstable_getMiniflareWorkerOptions(path.join(ROOT, "wrangler.toml"));
  const wo = config.workerOptions as Record<string, unknown>;
  const entry = opts.entry ?? path.join(ROOT, opts.localMode ? "worker/local-lab.ts" : "worker/index.ts");
  const tmp = await mkdtemp(path.join(tmpdir(), "edgelb-worker-"));
  const scriptPath = await bundleWorker(entry, tmp);
  const host = opts.host ?? "127.0.0.1";
  const listenPort = opts.port || (await freePort(host));
  // Agents and the status page reach the worker's /__edgelb/* by the address it listens on. Only
  // loopback names are control hosts by default, so another --host must be named (else every push is
  // a 404 "this hostname is not served here").
  const listenName = host.includes(":") ? `[${host}]` : host;
  const control: Record<string, string> = ["localhost", "127.0.0.1", "[::1]"].includes(listenName) ? {} : { EDGELB_CONTROL_HOSTS: `localhost,127.0.0.1,[::1],${listenName}` };
  const bindings = { ...((wo.bindings as Record<string, string>) ?? {}), ...control, ...(opts.vars ?? {}) };
  const mf = new Miniflare({
    name: "edgelb",
    modules: true,
    scriptPath,
    modulesRoot: tmp,
    compatibilityDate: wo.compatibilityDate as string,
    compatibilityFlags: wo.compatibilityFlags as string[],
    bindings,
    kvNamespaces: wo.kvNamespaces as Record<string, string>,
    kvPersist: opts.persistDir ? path.join(opts.persistDir, "kv") : false,
    host,
    port: listenPort,
    cf: false,
    verbose: false,
    handleRuntimeStdio(stdout, stderr) {
      const forward = (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n")) if (line.trim()) opts.onLog?.(line);
      };
      stdout.on("data", forward);
      stderr.on("data", forward);
    },
  });
  await mf.ready;
  // Miniflare's `ready` names an extra 127.0.0.1 socket when `host` is another
  // address, so the URL is built from what we asked it to listen on.
  const port = listenPort;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    url,
    port,
    mf,
    request(hostHeader, pathAndQuery, init = {}) {
      return requestWithHost(host, port, hostHeader, pathAndQuery, init);
    },
    async stop() {
      await mf.dispose();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
