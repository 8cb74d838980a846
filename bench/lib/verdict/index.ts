// Spread-aware verdicts for the data-plane and gate targets. Two quiet runs of
// the same code disagreed by ±10–20% on ratios whose targets sit a few percent
// away, so a single median against a threshold decided nothing. Here a target
// is judged on its PAIRED per-round values (the rows of one target run next to
// each other in every round, the ratio taken per round), with:
// - a distribution-free confidence interval of their median (order statistics,
//   binomial coverage ≥ 90%: no assumption about the noise's shape), and
// - the run's own noise: the same statistic between two identical copies of a
//   row (A/A control). Its interval's largest distance from "no difference"
//   (ratio 1, difference 0) is a bias identical rows can show in this run; the
//   target's interval is widened by it on both sides.
// "met" when the whole widened interval passes, "missed" when it all fails,
// "within noise" (not met) otherwise; the old figure (ratio of the rows'
// medians) must agree for either verdict. The rule is symmetric. Pure.
import { median } from "../stats.ts";

/** The confidence the median's interval must reach. */
export const COVERAGE = 0.9;

/** P(X ≤ k) for X ~ Binomial(n, 1/2). */
function binomialHalfCdf(n: number, k: number): number {
  let term = 0.5 ** n; // C(n, 0) / 2^n
  let sum = 0;
  for (let i = 0; i <= k; i++) {
    sum += term;
    term = (term * (n - i)) / (i + 1);
  }
  return sum;
}

export interface MedianInterval {
  median: number;
  /** [x(k), x(n−k+1)]: covers the true median with probability `coverage`, whatever the noise's distribution. */
  lo: number;
  hi: number;
  coverage: number;
  min: number;
  max: number;
  n: number;
}

/**
 * The order-statistic interval of the median with the smallest rank gap whose coverage is at least
 * `want` (n = 9 or 10: 2nd to 2nd-largest, ~96–98%; n = 11: 3rd to 3rd-largest, ~93%). Undefined
 * when even [min, max] covers less (fewer than 5 values at 90%). Non-finite values are dropped.
 */
export function medianInterval(values: readonly number[], want = COVERAGE): MedianInterval | undefined {
  const xs = values.filter(Number.isFinite).sort((a, b) => a - b);
  const n = xs.length;
  if (n === 0) return undefined;
  let best: { k: number; coverage: number } | undefined;
  for (let k = 1; k <= Math.floor((n + 1) / 2); k++) {
    // P(x(k) ≤ m ≤ x(n−k+1)) = 1 − 2·P(Bin(n, ½) ≤ k − 1)
    const coverage = 1 - 2 * binomialHalfCdf(n, k - 1);
    if (coverage >= want) best = { k, coverage };
    else break;
  }
  if (!best) return undefined;
  return { median: median(xs), lo: xs[best.k - 1]!, hi: xs[n - best.k]!, coverage: best.coverage, min: xs[0]!, max: xs[n - 1]!, n };
}

/** Per-round a_i ÷ b_i over the rounds both rows ran (same index = same round); rounds with b_i = 0 are left out. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (b[i]! !== 0 && Number.isFinite(a[i]!) && Number.isFinite(b[i]!)) out.push(a[i]! / b[i]!);
  return out;
}

/** Per-round a_i − b_i. */
export function pairedDifferences(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (Number.isFinite(a[i]!) && Number.isFinite(b[i]!)) out.push(a[i]! - b[i]!);
  return out;
}

export type Scale = "ratio" | "difference";
/** ≥ threshold, ≤ threshold, or strictly below it. */
export type Direction = "at least" | "at most" | "below";

export interface TargetRule {
  threshold: number;
  direction: Direction;
  scale: Scale;
}

export type SpreadVerdict = "met" | "missed" | "within noise";

export interface Judgement {
  verdict: SpreadVerdict;
  /** Why, in words (which bound crossed the threshold). */
  why: string;
  /** The paired per-round values. */
  interval?: MedianInterval;
  /** The A/A control's interval (same statistic between identical copies), when measured. */
  control?: MedianInterval;
  scale?: Scale;
  /** The bias identical rows showed: a factor (ratio: ≥ 1) or an amount (difference: ≥ 0). */
  noise?: number;
  /** The target's interval widened by the noise on both sides. */
  lo?: number;
  hi?: number;
  /** For "within noise" with the threshold inside the widened interval: roundsToDecide. */
  roundsToDecide?: number | "never";
}

function passes(rule: TargetRule, x: number): boolean {
  return rule.direction === "at least" ? x >= rule.threshold : rule.direction === "at most" ? x <= rule.threshold : x < rule.threshold;
}

/** How far the A/A control's interval reaches from "identical": a factor for ratios, an amount for differences. */
export function controlNoise(scale: Scale, control: MedianInterval): number {
  if (scale === "ratio") return Math.max(control.hi, 1 / control.lo, control.lo, 1 / control.hi, 1);
  return Math.max(Math.abs(control.lo), Math.abs(control.hi));
}

/**
 * The verdict on a target from its paired per-round values, the A/A control's per-round values of the same
 * statistic (undefined when the control row is missing or invalid: then no verdict is "met" or "missed"), and
 * the old rule's figure (ratio or difference of the rows' medians), which must agree with either verdict.
 */
export function judge(rule: TargetRule, perRound: readonly number[], control: readonly number[] | undefined, headline: number): Judgement {
  const interval = medianInterval(perRound);
  if (!interval) return { verdict: "within noise", why: `${perRound.filter(Number.isFinite).length} paired rounds: too few for a ${Math.round(COVERAGE * 100)}% interval of the median` };
  const controlInterval = control ? medianInterval(control) : undefined;
  if (!controlInterval) return { verdict: "within noise", interval, why: "the A/A control was not measured (or too few rounds): the run's own noise is unknown" };
  const noise = controlNoise(rule.scale, controlInterval);
  const lo = rule.scale === "ratio" ? interval.lo / noise : interval.lo - noise;
  const hi = rule.scale === "ratio" ? interval.hi * noise : interval.hi + noise;
  const base = { interval, control: controlInterval, scale: rule.scale, noise, lo, hi };
  const loPasses = passes(rule, lo);
  const hiPasses = passes(rule, hi);
  const headlinePasses = passes(rule, headline);
  if (loPasses && hiPasses && headlinePasses) return { verdict: "met", ...base, why: "the whole interval, widened by the A/A noise, passes" };
  if (!loPasses && !hiPasses && !headlinePasses) return { verdict: "missed", ...base, why: "the whole interval, widened by the A/A noise, fails" };
  if (loPasses && hiPasses) return { verdict: "within noise", ...base, why: "the interval passes but the ratio of the rows' medians does not" };
  if (!loPasses && !hiPasses) return { verdict: "within noise", ...base, why: "the interval fails but the ratio of the rows' medians passes" };
  if (interval.lo <= rule.threshold && rule.threshold <= interval.hi) {
    return { verdict: "within noise", ...base, why: "the threshold lies inside the median's own interval, before any widening by the A/A noise: this run cannot tell on which side of it the median is" };
  }
  const rounds = roundsToDecide(rule, interval, controlInterval);
  return { verdict: "within noise", ...base, roundsToDecide: rounds, why: `the threshold lies inside the interval widened by the A/A noise${roundsText(rounds, interval.n, rule.scale, controlInterval)}` };
}

/**
 * How many paired rounds would decide a target that is within noise, if the run's medians held: both intervals
 * narrow as 1 ÷ √rounds, the A/A control's own offset (its median's distance from "no difference") does not. The
 * widened interval clears the threshold once offset + w·√(n ÷ N) + s·√(nA ÷ N) ≤ margin, where margin is the
 * median's distance from the threshold, w the target interval's half facing it (n rounds), s the control's reach
 * beyond its offset (nA rounds); logarithms for ratios. Only when the target's own interval already lies on one
 * side of the threshold (only the A/A widening keeps the verdict open): otherwise the run cannot say on which side
 * the median is, any count fits the data, and undefined is returned. "never" when the offset alone is the margin
 * or more (if that offset is a real bias between the copies, not this run's chance); undefined too when this many
 * rounds would already do. An estimate under normal noise, not a promise. Pure.
 */
export function roundsToDecide(rule: TargetRule, interval: MedianInterval, control: MedianInterval): number | "never" | undefined {
  const f = rule.scale === "ratio" ? Math.log : (x: number) => x;
  const values = [interval.median, interval.lo, interval.hi, control.median, control.lo, control.hi, rule.threshold];
  if (rule.scale === "ratio" && values.some((x) => !(x > 0))) return undefined;
  if (values.some((x) => !Number.isFinite(x))) return undefined;
  const [m, lo, hi, t] = [f(interval.median), f(interval.lo), f(interval.hi), f(rule.threshold)];
  // The threshold inside the target's own interval: which side the median is on is not known.
  if (lo <= t && t <= hi) return undefined;
  const margin = Math.abs(m - t);
  const w = t < m ? m - lo : hi - m;
  const offset = Math.abs(f(control.median));
  const reach = Math.max(Math.abs(f(control.lo)), Math.abs(f(control.hi)));
  const s = Math.max(0, reach - offset);
  if (offset >= margin) return "never";
  const rounds = Math.ceil(((w * Math.sqrt(interval.n) + s * Math.sqrt(control.n)) / (margin - offset)) ** 2);
  return rounds > interval.n ? rounds : undefined;
}

function roundsText(rounds: number | "never" | undefined, n: number, scale: Scale, control: MedianInterval): string {
  const offset = scale === "ratio" ? `${(Math.abs(control.median - 1) * 100).toFixed(1)}%` : `${Math.abs(control.median).toPrecision(2)}`;
  if (rounds === "never") return `; if the A/A control's own offset (its median ${offset} from identical) is a real bias between the copies and not this run's chance, no number of rounds would decide it: that offset alone is the median's distance from the threshold`;
  if (rounds === undefined) return "";
  return `; if this run's medians held, about ${rounds.toLocaleString("en-US")} paired rounds would decide it (this run: ${n}; the intervals narrow as 1 ÷ √rounds, the A/A control's own offset of ${offset} does not; an estimate under normal noise, as uncertain as the medians it starts from)`;
}

/** "0.86× (paired median of 10 rounds; 97.9% interval 0.82–0.90, range 0.78–0.93; A/A ±3.0% → 0.80–0.93)". */
export function describeJudgement(j: Judgement, unit: (x: number) => string): string {
  const i = j.interval;
  if (!i) return j.why;
  const parts = [`paired median of ${i.n} rounds; ${(i.coverage * 100).toFixed(1)}% interval ${unit(i.lo)}–${unit(i.hi)}, range ${unit(i.min)}–${unit(i.max)}`];
  if (j.noise !== undefined && j.lo !== undefined && j.hi !== undefined) {
    const noise = j.scale === "ratio" ? `±${((j.noise - 1) * 100).toFixed(1)}%` : `±${unit(j.noise)}`;
    parts.push(`A/A noise ${noise} → ${unit(j.lo)}–${unit(j.hi)}`);
  } else parts.push(j.why);
  return `${unit(i.median)} (${parts.join("; ")})`;
}

/** "2nd to 2nd-largest of 8 rounds, 93.0%": the ranks and coverage medianInterval uses for n rounds. Pure. */
export function intervalRanks(n: number): string {
  const i = medianInterval(Array.from({ length: n }, (_, k) => k + 1));
  if (!i) return `none for ${n} rounds (too few for ${Math.round(COVERAGE * 100)}%)`;
  const ord = (k: number) => `${k}${k % 10 === 1 && k % 100 !== 11 ? "st" : k % 10 === 2 && k % 100 !== 12 ? "nd" : k % 10 === 3 && k % 100 !== 13 ? "rd" : "th"}`;
  return `${ord(i.lo)} to ${ord(i.lo)}-largest of ${n} rounds, ${(i.coverage * 100).toFixed(1)}%`;
}

/** The rule in words for the results' notes, with the interval's ranks for the round counts the targets had. */
export function verdictRule(rounds: readonly number[] = [8, 9]): string {
  return (
    `verdicts: each target is judged on its paired per-round values (its rows run next to each other in every round, in alternating order, and the ratio or difference is taken per round), not on one median: ` +
    `the median of those values and its distribution-free interval (order statistics, the narrowest with binomial coverage ≥ ${Math.round(COVERAGE * 100)}%: ${[...new Set(rounds)].map(intervalRanks).join("; ")}), ` +
    `widened on both sides by the run's own noise, the farthest the same interval of an A/A control (two identical copies of a row, each its own workerd, run the same way) lies from "no difference" (a factor for ratios, an amount for differences). ` +
    `met: the whole widened interval passes and so does the old figure (the ratio or difference of the rows' medians); missed: the whole widened interval fails and so does the old figure; otherwise within noise, counted as not met. ` +
    `The rule is symmetric, needs no assumption about the noise's shape, and never calls met what the old figure calls missed`
  );
}

/** The rule in words (8 or 9 rounds). */
export const VERDICT_RULE = verdictRule();
