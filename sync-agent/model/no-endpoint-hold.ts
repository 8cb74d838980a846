// Pure: damping of "no ready endpoint" (rv-ops 6). A one-replica app whose
// readiness flaps would otherwise cost a snapshot write per flip, and the
// free plan has 1,000 KV writes a day. Like kube-proxy's and the
// EndpointSlice controller's own batching, losing the last endpoint is
// published only once it has lasted `holdMs`; until then the Service keeps
// the backends it was last published with. Getting an endpoint back is
// published at once (the hold never delays serving).

import type { ServedService } from "./desired.ts";

/**
 * The default hold. A readiness probe's defaults (period 10 s, failure
 * threshold 3) make a flapping pod stay unready for at least 30 s; a brief
 * blip (a restart that is ready again within 10 s, a probe timeout) then
 * costs no write at all, and a scale to 0 answers 503 within 10 s (until
 * then the edge tries the nodes, which refuse, and answers 502).
 */
export const NO_ENDPOINT_HOLD_MS = 10_000;

/** Nothing the edge can send this Service's traffic to: it answers 503. */
export function noEndpointAnywhere(s: ServedService): boolean {
  return s.trafficPolicy === "Local" ? (s.localEndpoints?.size ?? 0) === 0 : s.noEndpoints === true;
}

/** Per Service (namespace/name): the backends it last had, and since when it has had none. */
export type NoEndpointMemo = Map<string, { localEndpoints?: Map<string, number> | undefined; terminatingFallback?: boolean | undefined; noneSince?: number }>;

/**
 * Applies the hold to this evaluation's served Services (in place: the
 * verdicts share them, so logs and Service status say what is published).
 * Returns when to evaluate again for a hold that is running, or undefined.
 * A Service first seen with no endpoint (new, or after an agent restart)
 * has nothing to hold on to and is published as it is.
 */
export function holdNoEndpoint(served: readonly ServedService[], memo: NoEndpointMemo, now: number, holdMs: number): number | undefined {
  let wakeAt: number | undefined;
  const seen = new Set<string>();
  for (const s of served) {
    const id = `${s.namespace}/${s.name}`;
    seen.add(id);
    if (!noEndpointAnywhere(s)) {
      memo.set(id, s.trafficPolicy === "Local" ? { localEndpoints: s.localEndpoints, terminatingFallback: s.terminatingFallback } : {});
      continue;
    }
    const last = memo.get(id);
    if (!last) continue;
    last.noneSince ??= now;
    const until = last.noneSince + holdMs;
    if (now >= until) continue;
    // Still within the hold: publish it as it was.
    if (s.trafficPolicy === "Local") {
      s.localEndpoints = last.localEndpoints;
      if (last.terminatingFallback) s.terminatingFallback = true;
    } else {
      delete s.noEndpoints;
    }
    wakeAt = Math.min(wakeAt ?? Infinity, until);
  }
  for (const id of memo.keys()) if (!seen.has(id)) memo.delete(id);
  return wakeAt;
}
