// Exponential backoff with full jitter, honouring the server's Retry-After.
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Random source in [0,1); injectable for tests. */
  random?: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 60_000 };

/**
 * Delay before retry number `attempt` (1-based): a random value in
 * [base/2, base] with base = initial·2^(attempt-1) capped at max, and never
 * sooner than Retry-After asked.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, retryAfterMs?: number): number {
  const base = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.max(0, attempt - 1));
  const jittered = base / 2 + (opts.random ?? Math.random)() * (base / 2);
  return Math.round(Math.max(jittered, retryAfterMs ?? 0));
}
