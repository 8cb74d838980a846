// Pure: damping of "no ready endpoint" (rv-ops 6). A one-replica app whose
// readiness flaps would otherwise cost a snapshot write per flip, and the
// free plan has 1,000 KV writes a day. Like kube-proxy's and the
// EndpointSlice controller's own batching, losing the last endpoint is
// published only once it has lasted `holdMs`; until then the Service keeps
// the backends it was last published with. Getting an endpoint back is
// published at once (the hold never delays serving).
//
// A readiness probe flaps slower than any fixed hold a scale to 0 can wait
// (unready for ≥ 30 s at the probe defaults), so the hold grows like BGP
// route-flap damping (RFC 2439): each loss within FLAP_WINDOW_MS of the
// previous one doubles that Service's hold, up to MAX_NO_ENDPOINT_HOLD_MS; a
// loss after a quiet window (a plain scale to 0) starts again at the base.

import type { ServedService } from "./desired.ts";

/**
 * The default hold. A readiness probe's defaults (period 10 s, failure
 * threshold 3) make a flapping pod stay unready for at least 30 s; a brief
 * blip (a restart that is ready again within 10 s, a probe timeout) then
 * costs no write at all, and a scale to 0 answers 503 within 10 s (until
 * then the edge tries the nodes, which refuse, and answers 502).
 */
export const NO_ENDPOINT_HOLD_MS = 10_000;
/** A loss this soon after the previous one counts as a flap. */
export const FLAP_WINDOW_MS = 10 * 60_000;
/** The longest hold a flapping Service gets: then it costs at most about two writes per 5 minutes. */
export const MAX_NO_ENDPOINT_HOLD_MS = 5 * 60_000;

/** Nothing the edge can send this Service's traffic to: it answers 503. */
export function noEndpointAnywhere(s: Pick<ServedService, "trafficPolicy" | "localEndpoints" | "noEndpoints">): boolean {
  return s.trafficPolicy === "Local" ? (s.localEndpoints?.size ?? 0) === 0 : s.noEndpoints === true;
}

/** Per Service (namespace/name): the backends it last had, since when it has had none, and its flap damping. */
export type NoEndpointMemo = Map<
  string,
  {
    localEndpoints?: Map<string, number> | undefined;
    terminatingFallback?: boolean | undefined;
    noneSince?: number;
    /** When it last lost its last endpoint, and the hold that loss got. */
    lastLossAt?: number;
    holdMs?: number;
  }
>;

/**
 * Applies the hold to this evaluation's served Services (in place: the
 * verdicts share them, so logs and Service status say what is published).
 * `holdMs` is the base hold (a flapping Service's grows, see above).
 * Returns when to evaluate again for a hold that is running, or undefined.
 * A Service first seen with no endpoint (new, or after an agent restart)
 * has nothing to hold on to and is published as it is.
 */
export function holdNoEndpoint(served: readonly ServedService[], memo: NoEndpointMemo, now: number, holdMs: number): number | undefined {
  let wakeAt: number | undefined;
  const seen = new Set<string>();
  for (const s of served) {
    seen.add(`${s.namespace}/${s.name}`);
    const until = holdOne(s, memo, now, holdMs);
    if (until !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, until);
  }
  for (const id of memo.keys()) if (!seen.has(id)) memo.delete(id);
  return wakeAt;
}

/** What the hold needs of a Service (a served LoadBalancer Service, or a Gateway backend). */
export type HeldBackends = Pick<ServedService, "namespace" | "name" | "trafficPolicy" | "localEndpoints" | "terminatingFallback" | "noEndpoints">;

/**
 * The hold for one Service, in place (see holdNoEndpoint); the caller prunes the memo of Services
 * gone. Returns when its hold ends while one is running. Idempotent for the same `now`.
 */
export function holdOne(s: HeldBackends, memo: NoEndpointMemo, now: number, holdMs: number): number | undefined {
  const id = `${s.namespace}/${s.name}`;
  if (!noEndpointAnywhere(s)) {
    const was = memo.get(id);
    memo.set(id, {
      ...(s.trafficPolicy === "Local" ? { localEndpoints: s.localEndpoints, terminatingFallback: s.terminatingFallback } : {}),
      ...(was?.lastLossAt !== undefined ? { lastLossAt: was.lastLossAt, holdMs: was.holdMs } : {}),
    });
    return undefined;
  }
  const last = memo.get(id);
  if (!last) return undefined;
  if (last.noneSince === undefined) {
    // A new loss: a flap if the previous one was recent.
    const flap = last.lastLossAt !== undefined && now - last.lastLossAt < FLAP_WINDOW_MS;
    last.holdMs = flap ? Math.min(2 * (last.holdMs ?? holdMs), Math.max(holdMs, MAX_NO_ENDPOINT_HOLD_MS)) : holdMs;
    last.lastLossAt = now;
    last.noneSince = now;
  }
  const until = last.noneSince + (last.holdMs ?? holdMs);
  if (now >= until) return undefined;
  // Still within the hold: publish it as it was.
  if (s.trafficPolicy === "Local") {
    s.localEndpoints = last.localEndpoints;
    if (last.terminatingFallback) s.terminatingFallback = true;
  } else {
    delete s.noEndpoints;
  }
  return until;
}
