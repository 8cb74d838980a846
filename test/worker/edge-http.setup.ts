// The deployed worker (worker/index.ts, bundled as wrangler would) served over
// real HTTP by its own Miniflare, and a Node HTTP client for tests inside
// workerd to drive it: what reaches a client on the wire (Content-Length,
// chunking, an aborted body) cannot be seen from inside the isolate, where a
// Response is handed over as an object.
// - the edge: Miniflare on 127.0.0.1, serving cluster "wire" (push token as in
//   the worker project);
// - the client (127.0.0.17): POST /request {host, path, method, headers, body}
//   makes one request to the edge on a fresh connection and answers with what
//   the client saw: status, headers, body bytes and whether the body ended
//   cleanly or the connection was cut;
// - a gzip origin (127.0.0.18): GET /gzip answers GZIP_TEXT gzip-encoded,
//   with the Content-Length of the encoded bytes.
import http from "node:http";
import zlib from "node:zlib";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import type { TestProject } from "vitest/node";
import { jsonServer } from "./json-server.ts";

export interface WireRequest {
  host: string;
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** The client hangs up once it has read this many body bytes (a client that goes away). */
  leaveAfterBytes?: number;
}

export interface WireResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Body bytes received before the end or the cut. */
  bytes: number;
  /** The body as text, when it is short. */
  text: string;
  /** "complete", or "aborted: <why>" when the connection ended mid-body. */
  outcome: string;
  /** For a gzip body: the text after one gunzip, or "undecodable: <why>". */
  gunzipped?: string;
}

export interface EdgeHttp {
  /** The client's address; tests POST WireRequests to `${client}/request`. */
  client: string;
  cluster: string;
  gzipOrigin: { address: string; port: number; text: string; encodedBytes: number };
}

declare module "vitest" {
  export interface ProvidedContext {
    edgeHttp: EdgeHttp;
  }
}

const CLUSTER = "wire";
const TEXT_LIMIT = 64 * 1024;
const GZIP_TEXT = "edgelb passes gzip through once. ".repeat(40);

function send(edge: URL, req: WireRequest): Promise<WireResponse> {
  return new Promise((resolve, reject) => {
    const out = http.request(
      edge,
      // A connection per request: a cut body must not be mistaken for keep-alive reuse.
      { method: req.method ?? "GET", path: req.path, agent: false, headers: { ...req.headers, host: req.host } },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        let settled = false;
        const finish = (outcome: string) => {
          if (settled) return;
          settled = true;
          const body = Buffer.concat(chunks);
          const r: WireResponse = { status: res.statusCode ?? 0, headers: res.headers, bytes, text: body.toString("utf8"), outcome };
          if (res.headers["content-encoding"] === "gzip") {
            try {
              r.gunzipped = zlib.gunzipSync(body).toString("utf8");
            } catch (e) {
              r.gunzipped = `undecodable: ${(e as Error).message}`;
            }
          }
          resolve(r);
        };
        res.on("data", (d: Buffer) => {
          bytes += d.length;
          if (bytes <= TEXT_LIMIT) chunks.push(d);
          if (req.leaveAfterBytes !== undefined && bytes >= req.leaveAfterBytes) {
            finish("left");
            out.destroy();
          }
        });
        res.on("end", () => finish(res.complete ? "complete" : "aborted: incomplete message"));
        res.on("aborted", () => finish("aborted: connection cut"));
        res.on("error", (e) => finish(`aborted: ${e.message}`));
        res.on("close", () => finish(res.complete ? "complete" : "aborted: closed early"));
      },
    );
    // A stalled body shows up as a failure, not as a test timeout.
    out.setTimeout(10_000, () => out.destroy(new Error("no progress for 10 s")));
    out.on("error", reject);
    out.end(req.body);
  });
}

export default async function setup(project: TestProject) {
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const bundle = await build({
    entryPoints: [`${root}worker/index.ts`],
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    target: "es2022",
    external: ["cloudflare:*"],
    write: false,
    logLevel: "silent",
  });
  const edge = new Miniflare({
    modules: [{ type: "ESModule", path: "index.mjs", contents: bundle.outputFiles[0]!.text }],
    compatibilityDate: "2026-04-01",
    compatibilityFlags: ["nodejs_compat"],
    kvNamespaces: ["EDGELB_KV"],
    bindings: { EDGELB_PUSH_TOKEN: "test-push-token", EDGELB_CLUSTERS: CLUSTER, EDGELB_CACHE_TTL: "10", EDGELB_TRANSPORT: "auto", EDGELB_REQUEST_LOGS: "false" },
    host: "127.0.0.1",
    port: 0,
    cf: false,
  });
  const edgeURL = await edge.ready;

  const client = jsonServer((req, body, json) => {
    if (req.method !== "POST" || req.url !== "/request") return json(404, { error: `unknown client path ${req.method} ${req.url}` });
    send(edgeURL, JSON.parse(body) as WireRequest).then(
      (r) => json(200, r),
      (e: Error) => json(502, { error: `request to the edge failed: ${e.message}` }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    client.once("error", reject);
    client.listen(0, "127.0.0.17", resolve);
  });

  const encoded = zlib.gzipSync(GZIP_TEXT);
  const gzipOrigin = http.createServer((req, res) => {
    req.resume();
    if (req.url !== "/gzip") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip", "content-length": encoded.length }).end(encoded);
  });
  await new Promise<void>((resolve, reject) => {
    gzipOrigin.once("error", reject);
    gzipOrigin.listen(0, "127.0.0.18", resolve);
  });

  project.provide("edgeHttp", {
    client: `http://127.0.0.17:${(client.address() as AddressInfo).port}`,
    cluster: CLUSTER,
    gzipOrigin: { address: "127.0.0.18", port: (gzipOrigin.address() as AddressInfo).port, text: GZIP_TEXT, encodedBytes: encoded.length },
  });

  return async () => {
    for (const s of [client, gzipOrigin]) s.closeAllConnections();
    await Promise.all([client, gzipOrigin].map((s) => new Promise((r) => s.close(r))));
    await edge.dispose();
  };
}
