// A fake of the slice of Cloudflare's REST API the agent's kv-api sink uses:
// Workers KV values (GET/PUT/DELETE
// /client/v4/accounts/{account}/storage/kv/namespaces/{ns}/values/{key}).
// It checks what the real API would refuse (path, account, namespace, bearer
// token) plus what our contract demands (the key is cluster/<name>, the body
// is a valid snapshot), keeps every accepted write for assertions, and can be
// told to answer 429/5xx for a while.
//
//   const cf = await startFakeCloudflare({ accountId: "acc", namespaceId: "ns", token: "t" });
//   sink baseUrl = cf.baseUrl   (http://127.0.0.1:<port>/client/v4)
//   cf.values.get("cluster/home"); cf.writes; cf.fail({ status: 429, times: 2, retryAfter: "1" });
//   await cf.stop();
import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseSnapshot, type Snapshot } from "../../worker/snapshot/schema.ts";
import { parseTombstone, type Tombstone } from "../../worker/config/stored.ts";

export interface FakeCloudflareOptions {
  accountId: string;
  namespaceId: string;
  token: string;
  host?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
  at: number;
}

export interface Fault {
  status: number;
  /** How many requests to fail (default: until clear()). */
  times?: number;
  retryAfter?: string;
  /** Only these methods (default all). */
  methods?: string[];
}

export interface FakeCloudflare {
  baseUrl: string;
  /** Stored values by (decoded) key. */
  values: Map<string, string>;
  /** Every accepted PUT of a snapshot, in order (with its metadata when sent multipart). */
  writes: { key: string; snapshot: Snapshot; at: number; metadata?: unknown }[];
  /** Every accepted PUT of a deletion tombstone (the kv-api sink's cleanup). */
  tombstones: { key: string; tombstone: Tombstone; at: number }[];
  /** Each key's metadata (set by a multipart PUT; a raw PUT clears it, as in the real API). */
  metadata: Map<string, unknown>;
  requests: RecordedRequest[];
  fail(fault: Fault): void;
  clear(): void;
  stop(): Promise<void>;
}

function envelope(status: number, errors: { code: number; message: string }[], result: unknown = null): [number, string] {
  return [status, JSON.stringify({ success: errors.length === 0, errors, messages: [], result })];
}

export async function startFakeCloudflare(opts: FakeCloudflareOptions): Promise<FakeCloudflare> {
  const values = new Map<string, string>();
  const writes: FakeCloudflare["writes"] = [];
  const tombstones: FakeCloudflare["tombstones"] = [];
  const metadata = new Map<string, unknown>();
  const requests: RecordedRequest[] = [];
  let fault: (Fault & { left: number }) | undefined;

  const handle = async (req: http.IncomingMessage): Promise<{ status: number; body: string; headers?: Record<string, string> }> => {
    const url = new URL(req.url ?? "/", "http://fake");
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body = Buffer.concat(chunks).toString("utf8");
    const m = /^\/client\/v4\/accounts\/([^/]+)\/storage\/kv\/namespaces\/([^/]+)\/(values|metadata)\/([^/]+)$/.exec(url.pathname);
    const reply = ([status, text]: [number, string], headers?: Record<string, string>) => ({ status, body: text, ...(headers ? { headers } : {}) });

    if (req.headers.authorization !== `Bearer ${opts.token}`) {
      return reply(envelope(req.headers.authorization ? 403 : 400, [{ code: 10000, message: "Authentication error" }]));
    }
    if (fault && fault.left > 0 && (!fault.methods || fault.methods.includes(req.method ?? ""))) {
      fault.left--;
      const headers: Record<string, string> = fault.retryAfter ? { "retry-after": fault.retryAfter } : {};
      const code = fault.status === 429 ? 10429 : 10001;
      return reply(envelope(fault.status, [{ code, message: fault.status === 429 ? "Too many requests" : "Internal error" }]), headers);
    }
    if (!m) return reply(envelope(404, [{ code: 7003, message: "Could not route to " + url.pathname }]));
    const [, account, namespace, kind, rawKey] = m;
    if (account !== opts.accountId) return reply(envelope(403, [{ code: 10000, message: "Authentication error" }]));
    if (namespace !== opts.namespaceId) return reply(envelope(404, [{ code: 10013, message: "namespace not found" }]));
    const key = decodeURIComponent(rawKey!);

    if (kind === "metadata") {
      if (req.method !== "GET") return reply(envelope(405, [{ code: 10000, message: "method not allowed" }]));
      if (!values.has(key)) return reply(envelope(404, [{ code: 10009, message: "get: 'key not found'" }]));
      return reply(envelope(200, [], metadata.get(key) ?? null));
    }
    switch (req.method) {
      case "GET": {
        const value = values.get(key);
        if (value === undefined) return reply(envelope(404, [{ code: 10009, message: "get: 'key not found'" }]));
        return { status: 200, body: value, headers: { "content-type": "application/octet-stream" } };
      }
      case "PUT": {
        let meta: unknown = undefined;
        const type = req.headers["content-type"] ?? "";
        if (type.startsWith("multipart/form-data")) {
          // The real API's form: `value` and, optionally, `metadata` (a JSON object).
          const form = await new Request("http://fake/", { method: "PUT", headers: { "content-type": type }, body }).formData();
          const value = form.get("value");
          if (value === null) return reply(envelope(400, [{ code: 10012, message: "fake: multipart without a value field" }]));
          body = typeof value === "string" ? value : await value.text();
          const raw = form.get("metadata");
          if (raw !== null) {
            try {
              meta = JSON.parse(String(raw));
            } catch {
              return reply(envelope(400, [{ code: 10012, message: "fake: metadata is not JSON" }]));
            }
          }
        } else if (type.startsWith("multipart/")) {
          return reply(envelope(400, [{ code: 10012, message: `fake: unsupported content type ${type}` }]));
        }
        if (!/^cluster\/[a-z0-9-]+$/.test(key)) return reply(envelope(400, [{ code: 10012, message: `fake: unexpected key ${key}` }]));
        const tombstone = parseTombstone(body);
        if (tombstone) {
          if (`cluster/${tombstone.cluster}` !== key) return reply(envelope(400, [{ code: 10012, message: `fake: tombstone for ${tombstone.cluster} under ${key}` }]));
          values.set(key, body);
          metadata.delete(key);
          tombstones.push({ key, tombstone, at: Date.now() });
          return reply(envelope(200, []));
        }
        const parsed = parseSnapshot(body);
        if (!parsed.ok) return reply(envelope(400, [{ code: 10012, message: `fake: ${parsed.error}` }]));
        if (`cluster/${parsed.snapshot.cluster}` !== key) {
          return reply(envelope(400, [{ code: 10012, message: `fake: snapshot for ${parsed.snapshot.cluster} under ${key}` }]));
        }
        values.set(key, body);
        if (meta === undefined) metadata.delete(key);
        else metadata.set(key, meta);
        writes.push({ key, snapshot: parsed.snapshot, at: Date.now(), ...(meta !== undefined ? { metadata: meta } : {}) });
        return reply(envelope(200, []));
      }
      case "DELETE":
        values.delete(key);
        metadata.delete(key);
        return reply(envelope(200, []));
      default:
        return reply(envelope(405, [{ code: 10000, message: "method not allowed" }]));
    }
  };

  const server = http.createServer((req, res) => {
    handle(req).then(
      (r) => {
        requests.push({ method: req.method ?? "", path: req.url ?? "", status: r.status, at: Date.now() });
        res.writeHead(r.status, { "content-type": "application/json", ...(r.headers ?? {}) });
        res.end(r.body);
      },
      (err: Error) => {
        res.writeHead(500);
        res.end(String(err));
      },
    );
  });
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://${host}:${port}/client/v4`,
    values,
    writes,
    tombstones,
    metadata,
    requests,
    fail(f) {
      fault = { ...f, left: f.times ?? Infinity };
    },
    clear() {
      fault = undefined;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
