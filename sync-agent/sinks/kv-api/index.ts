// Cloudflare's KV REST API, for clusters that push straight to KV:
// PUT/GET/DELETE {base}/accounts/{account}/storage/kv/namespaces/{ns}/values/cluster%2F<name>
// with an API token (Workers KV Storage: Edit). Every PUT is a billed KV write,
// so the controller only calls it when the content changed.
import { snapshotKey, type Snapshot } from "../../../worker/snapshot/schema.ts";
import { SecretFile } from "../token/index.ts";
import { decodeStored, removeValue, send, type HttpEndpoint } from "../http.ts";
import { SinkError, type ReadResult, type Sink, type WriteResult } from "../types.ts";

export const CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4";

export interface KvApiSinkOptions {
  accountId: string;
  namespaceId: string;
  cluster: string;
  /** The bearer token, or where to get the current one (a rotating Secret file). */
  apiToken: string | SecretFile;
  /** Overridable for tests (the fake Cloudflare API in test/cloudflare). */
  baseUrl?: string;
  timeoutMs?: number;
}

export class KvApiSink implements Sink {
  readonly description: string;
  private readonly endpoint: HttpEndpoint;

  constructor(opts: KvApiSinkOptions) {
    const base = (opts.baseUrl ?? CLOUDFLARE_API_BASE).replace(/\/+$/, "");
    this.description = `kv-api namespace ${opts.namespaceId} key ${snapshotKey(opts.cluster)}`;
    this.endpoint = {
      url:
        `${base}/accounts/${encodeURIComponent(opts.accountId)}/storage/kv/namespaces/` +
        `${encodeURIComponent(opts.namespaceId)}/values/${encodeURIComponent(snapshotKey(opts.cluster))}`,
      timeoutMs: opts.timeoutMs ?? 15_000,
      headers: () => ({ authorization: `Bearer ${tokenOf(opts.apiToken)}` }),
      onAuthFailure: () => (typeof opts.apiToken === "string" ? undefined : opts.apiToken.refresh()),
      label: (method) => `Cloudflare API ${method}`,
      explain: (text) => {
        try {
          const json = JSON.parse(text) as { errors?: { code?: number; message?: string }[] };
          if (json.errors?.length) return { message: json.errors.map((e) => `${e.message ?? "error"} (code ${e.code ?? "?"})`).join("; ") };
        } catch {
          /* keep the text */
        }
        return { message: text };
      },
      hint: (status) =>
        status === 401 || status === 403
          ? " (check --api-token-file / CLOUDFLARE_API_TOKEN: it needs Workers KV Storage: Edit on this account)"
          : status === 404
            ? " (check --account-id and --namespace-id)"
            : "",
    };
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    const res = await send(this.endpoint, "GET", signal, { missingIsAnswer: true });
    if (res.status === 404) {
      // 404 is both "no such key" (code 10009) and "no such namespace"; only the first is fine.
      const text = await res.text().catch(() => "");
      if (/10009|key not found/i.test(text) || text === "") return { snapshot: null, generation: 0 };
      throw new SinkError(`Cloudflare API GET answered 404: ${text.slice(0, 300)} (check --account-id and --namespace-id)`, "fatal", { status: 404 });
    }
    return decodeStored(await res.text());
  }

  async write(snapshot: Snapshot, signal?: AbortSignal): Promise<WriteResult> {
    const body = JSON.stringify(snapshot);
    // A raw body is stored as the value (multipart is only needed for metadata).
    const res = await send(this.endpoint, "PUT", signal, { body, contentType: "application/octet-stream" });
    const json = (await res.json().catch(() => ({}))) as { success?: boolean; errors?: { message?: string }[] };
    if (json.success === false) {
      throw new SinkError(`Cloudflare API PUT failed: ${json.errors?.map((e) => e.message).join("; ") ?? "unknown error"}`, "retryable");
    }
    return { bytes: Buffer.byteLength(body), unchanged: false };
  }

  remove(signal?: AbortSignal): Promise<void> {
    return removeValue(this.endpoint, signal);
  }
}

const tokenOf = (t: string | SecretFile): string => (typeof t === "string" ? t : t.get());
