// The edge worker's push endpoint: PUT/GET/DELETE
// {workerUrl}/__edgelb/v1/clusters/<cluster> with a bearer token. The worker
// validates the snapshot, refuses older generations (409 with its stored
// generation) and writes KV only when the content changed.
import type { Snapshot } from "../../../worker/snapshot/schema.ts";
import { SecretFile } from "../token/index.ts";
import { decodeStored, removeValue, send, type HttpEndpoint } from "../http.ts";
import type { HeartbeatResult, ReadResult, Sink, WriteResult } from "../types.ts";

export interface WorkerSinkOptions {
  workerUrl: string;
  cluster: string;
  /** The bearer token, or where to get the current one (a rotating Secret file). */
  token: string | SecretFile;
  timeoutMs?: number;
}

export class WorkerSink implements Sink {
  readonly description: string;
  private readonly endpoint: HttpEndpoint;

  constructor(opts: WorkerSinkOptions) {
    const base = opts.workerUrl.replace(/\/+$/, "");
    const url = `${base}/__edgelb/v1/clusters/${encodeURIComponent(opts.cluster)}`;
    this.description = `worker ${base}`;
    this.endpoint = {
      url,
      timeoutMs: opts.timeoutMs ?? 10_000,
      headers: () => ({ authorization: `Bearer ${tokenOf(opts.token)}`, accept: "application/json" }),
      onAuthFailure: () => (typeof opts.token === "string" ? undefined : opts.token.refresh()),
      label: (method) => `${method} ${url}`,
      explain: (text) => {
        try {
          const json = JSON.parse(text) as { error?: string; storedGeneration?: number };
          return {
            message: json.error || text,
            ...(typeof json.storedGeneration === "number" ? { storedGeneration: json.storedGeneration } : {}),
          };
        } catch {
          return { message: text }; // not JSON: keep the text
        }
      },
      hint: (status) =>
        status === 401 || status === 403
          ? " (check --push-token-file / EDGELB_PUSH_TOKEN against the worker's EDGELB_PUSH_TOKEN secret)"
          : status === 404
            ? " (is --worker-url right, and is the cluster listed in the worker's EDGELB_CLUSTERS?)"
            : status === 413
              ? " (snapshot too large for the worker)"
              : "",
    };
  }

  async read(signal?: AbortSignal): Promise<ReadResult> {
    const res = await send(this.endpoint, "GET", signal, { missingIsAnswer: true });
    if (res.status === 404) {
      await res.body?.cancel();
      return { snapshot: null, generation: 0 };
    }
    return decodeStored(await res.text());
  }

  async write(snapshot: Snapshot, signal?: AbortSignal): Promise<WriteResult> {
    const body = JSON.stringify(snapshot);
    const res = await send(this.endpoint, "PUT", signal, { body, contentType: "application/json" });
    const json = (await res.json().catch(() => ({}))) as { unchanged?: boolean; warning?: string };
    return { bytes: Buffer.byteLength(body), unchanged: json.unchanged === true, ...(json.warning ? { warning: json.warning } : {}) };
  }

  remove(signal?: AbortSignal): Promise<void> {
    return removeValue(this.endpoint, signal);
  }

  /**
   * POST …/heartbeat {"generation": N}: no snapshot upload, and the worker writes KV for it at most
   * once per its KV refresh interval (it dates the heartbeat with its own clock). A 404 (nothing
   * stored) or 409 (another generation stored) is a SinkError the caller answers with a push.
   */
  async heartbeat(snapshot: Snapshot, signal?: AbortSignal): Promise<HeartbeatResult> {
    const res = await send({ ...this.endpoint, url: `${this.endpoint.url}/heartbeat`, label: (m) => `${m} ${this.endpoint.url}/heartbeat` }, "POST", signal, {
      body: JSON.stringify({ generation: snapshot.generation }),
      contentType: "application/json",
    });
    await res.body?.cancel();
    return { kvWrite: false };
  }
}

const tokenOf = (t: string | SecretFile): string => (typeof t === "string" ? t : t.get());
