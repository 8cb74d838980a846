// The config store's timing constants, in a module of their own (no runtime types) so the bench can quote them.
/**
 * How often an isolate looks at its location's copy (a local Cache API read, free; a few SHA-256 over
 * a header or two of CPU). 1 s: the isolates that do not hold the location's check learn a change from
 * the copy, so this adds up to 1 s to their convergence (issue 19: p95 < 5 s after detection ~2 s).
 */
export const LOCATION_CHECK_MS = 1_000;
