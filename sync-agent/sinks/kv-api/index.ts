// Cloudflare's KV REST API, for clusters that push straight to KV:
// PUT/GET/DELETE {base}/accounts/{account}/storage/kv/namespaces/{ns}/values/cluster%2F<name>
// with an API token (Workers KV Storage: Edit). Every PUT is a billed KV write,
// so the controller only calls it when the content changed.
import { snapshotKey, type Snapshot } from "../../../worker/snapshot/schema.ts";
import {
  bodyExcerpt,
  errorKindForStatus,
  fetchWithTimeout,
  parseRetryAfter,
  SinkError,
  type ReadResult,
  type Sink,
  type WriteResult,
} from "../types.ts";
import { decodeStored } from "../worker/index.ts";

export const CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4";

export interface KvApiSinkOptions {
  accountId: string;
  namespaceId: string;
  cluster: string;
  apiToken: string;
  /** Overridable for tests (the fake Cloudflare API in test/cloudflare). */
  baseUrl?: string;
  timeoutMs?: number;
}

export class KvApiSink implements Sink {
  readonly description: string;
  private readonly url: string;
  private readonly timeoutMs: number;

  constructor(private readonly opts: KvApiSinkOptions) {
    const base = (opts.baseUrl ?? CLOUDFLARE_API_BASE).replace(/\/+$/, "");
    this.url =
      `${base}/accounts/${encodeURIComponent(opts.accountId)}/storage/kv/namespaces/` +
      `${encodeURIComponent(opts.namespaceId)}/values/${encodeURIComponent(snapshotKey(opts.cluster))}`;
    this.description = `kv-api namespace ${opts.namespaceId} key ${snapshotKey(opts.cluster)}`;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.opts.apiToken}`, ...extra };
  }

  private async fail(res: Response, method: string): Promise<never> {
    const text = await bodyExcerpt(res);
    let message = text;
    try {
      const json = JSON.parse(text) as { errors?: { code?: number; message?: string }[] };
      if (json.errors?.length) message = json.errors.map((e) => `${e.message ?? "error"} (code ${e.code ?? "?"})`).join("; ");
    } catch {
      /* keep the text */
    }
    const hint =
      res.status === 401 || res.status === 403
        ? " (check --api-token-file / CLOUDFLARE_API_TOKEN: it needs Workers KV Storage: Edit on this account)"
        : res.status === 404
          ? " (check --account-id and --namespace-id)"
          : "";
    const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
    throw new SinkError(`Cloudflare API ${method} answered ${res.status}: ${message || res.statusText}${hint}`, errorKindForStatus(res.status), {
      status: res.status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    const res = await fetchWithTimeout(this.url, { method: "GET", headers: this.headers() }, this.timeoutMs, signal);
    if (res.status === 404) {
      // 404 is both "no such key" (code 10009) and "no such namespace"; only the first is fine.
      const text = await res.text().catch(() => "");
      if (/10009|key not found/i.test(text) || text === "") return { snapshot: null, generation: 0 };
      throw new SinkError(`Cloudflare API GET answered 404: ${text.slice(0, 300)} (check --account-id and --namespace-id)`, "fatal", { status: 404 });
    }
    if (!res.ok) return this.fail(res, "GET");
    return decodeStored(await res.text());
  }

  async write(snapshot: Snapshot, signal?: AbortSignal): Promise<WriteResult> {
    const body = JSON.stringify(snapshot);
    const res = await fetchWithTimeout(
      this.url,
      // A raw body is stored as the value (multipart is only needed for metadata).
      { method: "PUT", headers: this.headers({ "content-type": "application/octet-stream" }), body },
      this.timeoutMs,
      signal,
    );
    if (!res.ok) return this.fail(res, "PUT");
    const json = (await res.json().catch(() => ({}))) as { success?: boolean; errors?: { message?: string }[] };
    if (json.success === false) {
      throw new SinkError(`Cloudflare API PUT failed: ${json.errors?.map((e) => e.message).join("; ") ?? "unknown error"}`, "retryable");
    }
    return { bytes: Buffer.byteLength(body), unchanged: false };
  }

  async remove(signal?: AbortSignal): Promise<void> {
    const res = await fetchWithTimeout(this.url, { method: "DELETE", headers: this.headers() }, this.timeoutMs, signal);
    if (res.status === 404) return;
    if (!res.ok) return this.fail(res, "DELETE");
    await res.body?.cancel();
  }
}
