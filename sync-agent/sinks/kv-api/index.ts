// Cloudflare's KV REST API, for clusters that push straight to KV:
// PUT/GET/DELETE {base}/accounts/{account}/storage/kv/namespaces/{ns}/values/cluster%2F<name>
// with an API token (Workers KV Storage: Edit). Every PUT is a billed KV write,
// so the controller only calls it when the content changed.
import { snapshotKey, type Snapshot } from "../../../worker/snapshot/schema.ts";
// The deletion tombstone is part of the KV contract with the worker (worker/config/stored.ts, pure).
import { epochOf, parseTombstone, tombstoneText, type StoredMetadata } from "../../../worker/config/stored.ts";
import { SecretFile } from "../token/index.ts";
import { decodeStored, send, type HttpEndpoint } from "../http.ts";
import { SinkError, type HeartbeatResult, type ReadResult, type Sink, type WriteResult } from "../types.ts";

export const CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4";

export interface KvApiSinkOptions {
  accountId: string;
  namespaceId: string;
  cluster: string;
  /** The bearer token, or where to get the current one (a rotating Secret file). */
  apiToken: string | SecretFile;
  /** Overridable for tests (the fake Cloudflare API in test/cloudflare). */
  baseUrl?: string;
  /** The clock that dates heartbeats (the worker bounds it by its own: never in the future). */
  now?: () => number;
  timeoutMs?: number;
  /** Told once when this agent's clock is off Cloudflare's (the `Date` of an API answer) by more than 30 s. */
  onClockSkew?: (skewMs: number) => void;
}

export class KvApiSink implements Sink {
  readonly description: string;
  private readonly cluster: string;
  private readonly endpoint: HttpEndpoint;
  /** GET …/metadata/<key>: the install epoch a tombstone must carry. */
  private readonly metadataEndpoint: HttpEndpoint;
  private readonly now: () => number;

  constructor(opts: KvApiSinkOptions) {
    const base = (opts.baseUrl ?? CLOUDFLARE_API_BASE).replace(/\/+$/, "");
    this.cluster = opts.cluster;
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
    this.metadataEndpoint = { ...this.endpoint, url: this.endpoint.url.replace(/\/values\/([^/]+)$/, "/metadata/$1") };
    this.now = opts.now ?? Date.now;
    this.onClockSkew = opts.onClockSkew;
  }

  private readonly onClockSkew: ((skewMs: number) => void) | undefined;
  private skewTold = false;

  /** heartbeatAt is dated by this agent's clock; the worker judges it by Cloudflare's. */
  private checkClock(res: Response): void {
    if (this.skewTold || !this.onClockSkew) return;
    const date = Date.parse(res.headers.get("date") ?? "");
    if (!Number.isFinite(date)) return;
    const skew = this.now() - date; // Date has 1 s resolution
    if (Math.abs(skew) <= 30_000) return;
    this.skewTold = true;
    this.onClockSkew(skew);
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    const res = await send(this.endpoint, "GET", signal, { missingIsAnswer: true });
    if (res.status === 404) {
      await keyNotFoundOrThrow(res);
      return { snapshot: null, generation: 0 };
    }
    const text = await res.text();
    const tombstone = parseTombstone(text);
    if (tombstone) return { snapshot: null, generation: tombstone.generation, deleted: true };
    return decodeStored(text);
  }

  /**
   * The value with its KV metadata (multipart): `heartbeatAt` is this agent's clock, the only one it
   * has (no worker is in the path). Every call is one billed KV write.
   */
  async write(snapshot: Snapshot, signal?: AbortSignal): Promise<WriteResult> {
    const body = JSON.stringify(snapshot);
    const form = new FormData();
    form.set("value", body);
    form.set("metadata", JSON.stringify({ heartbeatAt: Math.floor(this.now()) } satisfies StoredMetadata));
    const res = await send(this.endpoint, "PUT", signal, { body: form });
    this.checkClock(res);
    const json = (await res.json().catch(() => ({}))) as { success?: boolean; errors?: { message?: string }[] };
    if (json.success === false) {
      throw new SinkError(`Cloudflare API PUT failed: ${json.errors?.map((e) => e.message).join("; ") ?? "unknown error"}`, "retryable");
    }
    return { bytes: Buffer.byteLength(body), unchanged: false };
  }

  /** The stored value again with a new heartbeatAt: a KV write (DEFAULT_KV_HEARTBEAT_MS keeps 144 a day). */
  async heartbeat(snapshot: Snapshot, signal?: AbortSignal): Promise<HeartbeatResult> {
    await this.write(snapshot, signal);
    return { kvWrite: true };
  }

  /**
   * `cleanup`: a deletion tombstone instead of a bare DELETE (the worker's own DELETE does the same).
   * A worker location that reads it hands it to the fast path's Durable Object, so every location
   * stops serving the cluster at its next check; a missing key would be ignored there until KV's
   * propagation time had passed. Nothing stored, or already a tombstone: nothing to do.
   */
  async remove(signal?: AbortSignal): Promise<void> {
    const res = await send(this.endpoint, "GET", signal, { missingIsAnswer: true });
    if (res.status === 404) {
      // Nothing stored under the key: nothing to do. A wrong namespace or account throws.
      await keyNotFoundOrThrow(res);
      return;
    }
    const text = await res.text();
    if (parseTombstone(text)) return;
    const generation = decodeStored(text).generation;
    const meta = await send(this.metadataEndpoint, "GET", signal, { missingIsAnswer: true });
    const json = (await meta.json().catch(() => ({}))) as { result?: unknown };
    // The install epoch the worker stored (0 for values only this sink wrote).
    const installEpoch = epochOf(json.result) ?? 0;
    await send(this.endpoint, "PUT", signal, { body: tombstoneText(this.cluster, generation, installEpoch, this.now()), contentType: "application/octet-stream" }).then((r) => r.body?.cancel());
  }
}

/**
 * A 404 is both "no such key" (code 10009: fine, nothing stored) and "no such namespace / account"
 * (a typo'd --namespace-id: fatal, or `cleanup` would say "nothing to remove" while the real value
 * keeps routing the cluster's hostnames).
 */
async function keyNotFoundOrThrow(res: Response): Promise<void> {
  const text = await res.text().catch(() => "");
  if (/10009|key not found/i.test(text) || text === "") return;
  throw new SinkError(`Cloudflare API GET answered 404: ${text.slice(0, 300)} (check --account-id and --namespace-id)`, "fatal", { status: 404 });
}

const tokenOf = (t: string | SecretFile): string => (typeof t === "string" ? t : t.get());
