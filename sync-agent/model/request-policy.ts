// The request-path annotations of a Service, parsed into snapshot policy
// fields. Pure; a value that cannot be read is an error naming the annotation,
// never a silent default.
import { ANNOTATION_RESPONSE_TIMEOUT, ANNOTATION_RETRY_NON_IDEMPOTENT } from "./constants.ts";

/** Longest response-head wait the worker accepts (schema max): long-poll apps. */
export const MAX_RESPONSE_TIMEOUT_MS = 3_600_000;

export interface RequestPolicy {
  retryNonIdempotent?: boolean;
  responseTimeoutMs?: number;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "120s", "2m", "1h", "500ms", or a bare number of seconds. */
export function parseDuration(value: string): number | undefined {
  const m = /^(\d{1,10}(?:\.\d{1,3})?)\s*(ms|s|m|h)?$/.exec(value.trim().toLowerCase());
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2] ?? "s"]!);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

export function requestPolicy(annotations: Record<string, string>): RequestPolicy | { error: string } {
  const out: RequestPolicy = {};
  const retry = annotations[ANNOTATION_RETRY_NON_IDEMPOTENT]?.trim().toLowerCase();
  if (retry !== undefined && retry !== "") {
    if (retry !== "true" && retry !== "false") {
      return { error: `${ANNOTATION_RETRY_NON_IDEMPOTENT}=${JSON.stringify(retry)} must be "true" or "false"` };
    }
    if (retry === "true") out.retryNonIdempotent = true;
  }
  const timeout = annotations[ANNOTATION_RESPONSE_TIMEOUT];
  if (timeout !== undefined && timeout.trim() !== "") {
    const ms = parseDuration(timeout);
    if (ms === undefined || ms < 1 || ms > MAX_RESPONSE_TIMEOUT_MS) {
      return {
        error: `${ANNOTATION_RESPONSE_TIMEOUT}=${JSON.stringify(timeout)} must be a duration from 1ms to 1h (e.g. "120s", "5m")`,
      };
    }
    out.responseTimeoutMs = ms;
  }
  return out;
}
