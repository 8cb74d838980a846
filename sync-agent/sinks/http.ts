// What the HTTP sinks (worker push endpoint, Cloudflare KV API) share: one
// request with a timeout, turning a non-2xx answer into a classified SinkError,
// decoding a stored value, and DELETE that treats 404 as already gone. Each
// sink supplies only what differs: its URL, headers and how it explains errors.
import { parseSnapshot } from "../../worker/snapshot/schema.ts";
import { bodyExcerpt, errorKindForStatus, fetchWithTimeout, parseRetryAfter, SinkError, type ReadResult } from "./types.ts";

export interface HttpEndpoint {
  url: string;
  timeoutMs: number;
  /** Sent on every request (authorization, accept); a function when the token may rotate. */
  headers: Record<string, string> | (() => Record<string, string>);
  /** The credentials were refused (401/403): re-read them before the next attempt. */
  onAuthFailure?: () => void;
  /** Names a request in error messages, e.g. "Cloudflare API PUT". */
  label(method: string): string;
  /** The server's own message (and, on 409, its stored generation) from an error body. */
  explain(text: string): { message: string; storedGeneration?: number };
  /** What the operator should check for this status; "" when nothing specific. */
  hint(status: number): string;
}

export interface SendOptions {
  /** A FormData body sets its own multipart content type (leave contentType out). */
  body?: string | FormData;
  contentType?: string;
  /** Hand a 404 back to the caller instead of failing (GET of a missing key, DELETE). */
  missingIsAnswer?: boolean;
}

/** One request; any other non-2xx answer throws a SinkError. */
export async function send(ep: HttpEndpoint, method: string, signal?: AbortSignal, opts: SendOptions = {}): Promise<Response> {
  const base = typeof ep.headers === "function" ? ep.headers() : ep.headers;
  const headers = opts.contentType ? { ...base, "content-type": opts.contentType } : base;
  const init: RequestInit = opts.body !== undefined ? { method, headers, body: opts.body } : { method, headers };
  const res = await fetchWithTimeout(ep.url, init, ep.timeoutMs, signal);
  if (res.ok || (opts.missingIsAnswer && res.status === 404)) return res;
  if (res.status === 401 || res.status === 403) ep.onAuthFailure?.();
  return fail(ep, res, method);
}

async function fail(ep: HttpEndpoint, res: Response, method: string): Promise<never> {
  const { message, storedGeneration } = ep.explain(await bodyExcerpt(res));
  const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
  throw new SinkError(
    `${ep.label(method)} answered ${res.status}: ${message || res.statusText}${ep.hint(res.status)}`,
    errorKindForStatus(res.status),
    {
      status: res.status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...(storedGeneration !== undefined ? { storedGeneration } : {}),
    },
  );
}

/** DELETE; a 404 means there is nothing left to remove. */
export async function removeValue(ep: HttpEndpoint, signal?: AbortSignal): Promise<void> {
  const res = await send(ep, "DELETE", signal, { missingIsAnswer: true });
  await res.body?.cancel();
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
