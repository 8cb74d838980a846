// Rise/fall thresholds as cloud load balancers apply them: a backend changes
// state only after `rise` consecutive successes or `fall` consecutive
// failures. The very first result decides at once, so a starting agent does
// not wait rise×interval before it can publish anything.
export interface ProbeState {
  /** undefined until the first probe finished. */
  healthy: boolean | undefined;
  successes: number;
  failures: number;
  /** Last failure reason ("503", "ECONNREFUSED", "timeout after 1000 ms"). */
  lastError?: string;
}

export interface Thresholds {
  rise: number;
  fall: number;
}

export const INITIAL_STATE: ProbeState = { healthy: undefined, successes: 0, failures: 0 };

export function applyProbe(state: ProbeState, ok: boolean, t: Thresholds, error?: string): { state: ProbeState; changed: boolean } {
  const successes = ok ? state.successes + 1 : 0;
  const failures = ok ? 0 : state.failures + 1;
  let healthy = state.healthy;
  if (healthy === undefined) healthy = ok;
  else if (!healthy && successes >= t.rise) healthy = true;
  else if (healthy && failures >= t.fall) healthy = false;
  const next: ProbeState = { healthy, successes, failures, ...(ok ? {} : { lastError: error ?? "failed" }) };
  return { state: next, changed: healthy !== state.healthy };
}
