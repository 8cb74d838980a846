// The steering setting an isolate serves. EDGELB_STEERING is read once per
// isolate; a good value is remembered in KV, so that a deploy with a bad one
// (a typo in a JSON var) keeps serving the last good setting instead of
// dropping every rule, and says so in the log and on the status page.
import type { Logger } from "../log/index.ts";
import { NO_STEERING, parseSteering, type Steering } from "./settings.ts";

/** The KV key holding the last accepted EDGELB_STEERING text. */
export const LAST_GOOD_KEY = "settings/steering";

export interface SteeringState {
  steering: Steering;
  /** "env": EDGELB_STEERING as set; "last-good": it was refused and the remembered one serves; "none". */
  source: "env" | "last-good" | "none";
  /** Why EDGELB_STEERING was refused, while it is. */
  error?: string;
  warnings: string[];
}

export async function loadSteering(
  raw: string | undefined,
  served: readonly string[],
  kv: Pick<KVNamespace, "get" | "put"> | undefined,
  log: Logger,
  waitUntil: (p: Promise<unknown>) => void = () => {},
): Promise<SteeringState> {
  const parsed = parseSteering(raw, served);
  if (parsed.ok) {
    for (const w of parsed.warnings) log("warn", "steering.warning", { problem: w });
    if (parsed.steering.rules.length > 0) {
      log("info", "steering.loaded", { rules: parsed.steering.rules.length, source: "env" });
      if (kv) waitUntil(remember(kv, raw!.trim(), log));
    }
    return { steering: parsed.steering, source: parsed.steering.rules.length ? "env" : "none", warnings: parsed.warnings };
  }
  const error = parsed.error;
  let stored: string | null = null;
  try {
    stored = kv ? await kv.get(LAST_GOOD_KEY, "text") : null;
  } catch (err) {
    log("error", "steering.last_good_unreadable", { error: (err as Error).message });
  }
  const last = stored === null ? undefined : parseSteering(stored, served);
  if (last?.ok) {
    log("error", "steering.invalid", { error, keeping: "the last good EDGELB_STEERING (from KV)", rules: last.steering.rules.length });
    return { steering: last.steering, source: "last-good", error, warnings: last.warnings };
  }
  // Nothing good to keep: no rule at all, so every hostname is served by its first claiming cluster.
  log("error", "steering.invalid", { error, keeping: "no steering: each hostname is served by the first cluster that claims it" });
  return { steering: NO_STEERING, source: "none", error, warnings: [] };
}

async function remember(kv: Pick<KVNamespace, "get" | "put">, text: string, log: Logger): Promise<void> {
  try {
    // One read per isolate start; a write only when the setting changed (KV bills writes).
    if ((await kv.get(LAST_GOOD_KEY, "text")) !== text) await kv.put(LAST_GOOD_KEY, text);
  } catch (err) {
    log("warn", "steering.remember_failed", { error: (err as Error).message });
  }
}
