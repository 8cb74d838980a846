// Where snapshots go. A Sink does one HTTP exchange per call and classifies
// failures; retry timing lives in the controller (with ./retry.ts) so a retry
// always sends the newest desired snapshot, never a stale one.
import type { Snapshot } from "../../worker/snapshot/schema.ts";

export interface ReadResult {
  /** The stored snapshot, or null when nothing (valid) is stored. */
  snapshot: Snapshot | null;
  /** The stored generation, also when the stored value failed validation (0 = none). */
  generation: number;
  /** Why a stored value was not usable, for a warning. */
  problem?: string;
  /** The edge holds a deletion (a tombstone from `cleanup`): `generation` is the tombstone's, pushes go above it. */
  deleted?: boolean;
}

export interface WriteResult {
  /** Bytes of the JSON body sent. */
  bytes: number;
  /** The receiver already had identical content (worker push endpoint only). */
  unchanged: boolean;
  /** Accepted, but something is off (e.g. the worker does not route this cluster). */
  warning?: string;
}

export interface Sink {
  /** For logs: "worker https://edge.example.com" or "kv-api <namespace>". */
  readonly description: string;
  read(signal?: AbortSignal): Promise<ReadResult>;
  write(snapshot: Snapshot, signal?: AbortSignal): Promise<WriteResult>;
  /** Removes the cluster's snapshot (uninstall / `cleanup`). */
  remove(signal?: AbortSignal): Promise<void>;
  /**
   * "This snapshot (already stored) is still what I publish": keeps an unchanged cluster fresh at the
   * edge (./heartbeat.ts). `kvWrite`: whether it cost a KV write on the agent's side.
   */
  heartbeat?(snapshot: Snapshot, signal?: AbortSignal): Promise<HeartbeatResult>;
}

export interface HeartbeatResult {
  /** The agent itself wrote KV for it (kv-api sink: every heartbeat rewrites the value's metadata). */
  kvWrite: boolean;
}

export type SinkErrorKind =
  /** Try again later (network, 5xx, 429). */
  | "retryable"
  /** The stored generation is newer or equal with different content: re-read and bump. */
  | "conflict"
  /** Will not heal by retrying the same request (400, 401, 403, 404, 413): report once. */
  | "fatal";

export class SinkError extends Error {
  constructor(
    message: string,
    readonly kind: SinkErrorKind,
    readonly details: { status?: number; retryAfterMs?: number; storedGeneration?: number } = {},
  ) {
    super(message);
    this.name = "SinkError";
  }
}

/** Parses Retry-After (delta-seconds or HTTP-date) into milliseconds from now. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Classifies an HTTP status the same way for every sink. */
export function errorKindForStatus(status: number): SinkErrorKind {
  if (status === 409) return "conflict";
  if (status === 408 || status === 425 || status === 429 || status >= 500) return "retryable";
  return "fatal";
}

/** fetch with a per-request timeout that also honours the caller's signal. */
export async function fetchWithTimeout(url: string, init: RequestInit, timeoutMs: number, signal?: AbortSignal): Promise<Response> {
  const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])];
  try {
    return await fetch(url, { ...init, signal: AbortSignal.any(signals) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (signal?.aborted) throw err;
    const why = e.name === "TimeoutError" ? `timed out after ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new SinkError(`${init.method ?? "GET"} ${redactUrl(url)}: ${why}`, "retryable");
  }
}

function redactUrl(url: string): string {
  const u = new URL(url);
  u.username = "";
  u.password = "";
  u.search = "";
  return u.toString();
}

/** A short excerpt of a response body for error messages. */
export async function bodyExcerpt(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
