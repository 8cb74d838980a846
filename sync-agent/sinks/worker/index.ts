// The edge worker's push endpoint: PUT/GET/DELETE
// {workerUrl}/__edgelb/v1/clusters/<cluster> with a bearer token. The worker
// validates the snapshot, refuses older generations (409 with its stored
// generation) and writes KV only when the content changed.
import { parseSnapshot, type Snapshot } from "../../../worker/snapshot/schema.ts";
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

export interface WorkerSinkOptions {
  workerUrl: string;
  cluster: string;
  token: string;
  timeoutMs?: number;
}

export class WorkerSink implements Sink {
  readonly description: string;
  private readonly url: string;
  private readonly timeoutMs: number;

  constructor(private readonly opts: WorkerSinkOptions) {
    const base = opts.workerUrl.replace(/\/+$/, "");
    this.url = `${base}/__edgelb/v1/clusters/${encodeURIComponent(opts.cluster)}`;
    this.description = `worker ${base}`;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.opts.token}`, accept: "application/json", ...extra };
  }

  private async fail(res: Response, method: string): Promise<never> {
    const text = await bodyExcerpt(res);
    let error = text;
    let storedGeneration: number | undefined;
    try {
      const json = JSON.parse(text) as { error?: string; storedGeneration?: number };
      if (json.error) error = json.error;
      if (typeof json.storedGeneration === "number") storedGeneration = json.storedGeneration;
    } catch {
      /* not JSON: keep the text */
    }
    const hint =
      res.status === 401 || res.status === 403
        ? " (check --push-token-file / EDGELB_PUSH_TOKEN against the worker's EDGELB_PUSH_TOKEN secret)"
        : res.status === 404
          ? " (is --worker-url right, and is the cluster listed in the worker's EDGELB_CLUSTERS?)"
          : res.status === 413
            ? " (snapshot too large for the worker)"
            : "";
    const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
    throw new SinkError(`${method} ${this.url} answered ${res.status}: ${error || res.statusText}${hint}`, errorKindForStatus(res.status), {
      status: res.status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...(storedGeneration !== undefined ? { storedGeneration } : {}),
    });
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    const res = await fetchWithTimeout(this.url, { method: "GET", headers: this.headers() }, this.timeoutMs, signal);
    if (res.status === 404) {
      await res.body?.cancel();
      return { snapshot: null, generation: 0 };
    }
    if (!res.ok) return this.fail(res, "GET");
    return decodeStored(await res.text());
  }

  async write(snapshot: Snapshot, signal?: AbortSignal): Promise<WriteResult> {
    const body = JSON.stringify(snapshot);
    const res = await fetchWithTimeout(
      this.url,
      { method: "PUT", headers: this.headers({ "content-type": "application/json" }), body },
      this.timeoutMs,
      signal,
    );
    if (!res.ok) return this.fail(res, "PUT");
    const json = (await res.json().catch(() => ({}))) as { unchanged?: boolean; warning?: string };
    return { bytes: Buffer.byteLength(body), unchanged: json.unchanged === true, ...(json.warning ? { warning: json.warning } : {}) };
  }

  async remove(signal?: AbortSignal): Promise<void> {
    const res = await fetchWithTimeout(this.url, { method: "DELETE", headers: this.headers() }, this.timeoutMs, signal);
    if (res.status === 404) return;
    if (!res.ok) return this.fail(res, "DELETE");
    await res.body?.cancel();
  }
}

/** Validates a stored value; keeps its generation even when it is invalid. */
export function decodeStored(text: string): ReadResult {
  const parsed = parseSnapshot(text);
  if (parsed.ok) return { snapshot: parsed.snapshot, generation: parsed.snapshot.generation };
  let generation = 0;
  try {
    const g = (JSON.parse(text) as { generation?: unknown }).generation;
    if (typeof g === "number" && Number.isSafeInteger(g) && g > 0) generation = g;
  } catch {
    /* not JSON */
  }
  return { snapshot: null, generation, problem: parsed.error };
}
