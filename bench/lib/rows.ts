// The machinery every data-plane row goes through: verify its answers, warm
// it up, load it in interleaved rounds (round 1: a b c…, round 2: b c … a;
// the rows of a target's block next to each other, their order flipped every
// other round) while reading its workerd's CPU time around each round, verify
// it again.
// A row that fails a check or has errors under load comes out invalid, with
// the reason, and its numbers are never presented as results.
import os from "node:os";
import { busyShare, readCpuTicks } from "./cores/index.ts";
import type { LoadGenerator, LoadResult } from "./loadgen.ts";
import { median } from "./stats.ts";
import { verifyRow, verifyRowAnswers, type Expectation } from "./verify.ts";

export interface RowSpec {
  id: string;
  label: string;
  /** Base URL of what the load hits (worker, proxy or origin). */
  url: string;
  /** Host header to send (edgelb routes by it). */
  host?: string;
  /** More request header fields the load generator sends (not the probes). */
  headers?: Readonly<Record<string, string>>;
  /** Path and query every request asks for. */
  path: string;
  expect: Expectation;
  connections: number;
  /** Seconds per round when the row needs longer than the others (20 MiB downloads). */
  durationS?: number;
  /** Per-request timeout under load (default the load generator's 5 s). */
  timeoutS?: number;
  /** CPU seconds of the workerd process serving the row (worker rows only). */
  cpuSeconds?: () => number;
  /**
   * Runs in the first `rounds` rounds only (a row no target is judged on: more rounds buy its section no power);
   * default every round. Rows paired by a target must run the same rounds.
   */
  rounds?: number;
}

export interface RoundResult extends LoadResult {
  /** CPU seconds the row's workerd used during this round. */
  cpuS?: number;
  /** The machine's 1-minute load average when the round ended (2 cores: above ~2, others shared them). */
  loadAvg?: number;
  /** Busy share (0–1) of each group of CPUs during the round (RunRowsOptions.cores), from /proc/stat. */
  busy?: Record<string, number>;
  /** Wall-clock seconds between the CPU readings around the round. */
  wallS?: number;
}

export interface RowOutcome {
  spec: RowSpec;
  rounds: RoundResult[];
  /** Problems found by the probes before and after the load. */
  before: string[];
  /** Sizes in bytes of the origin's bodies the probes before the load got (each size once, ascending). */
  answerBytes?: number[];
  after: string[];
  errors: number;
  requests: number;
  valid: boolean;
  /** Why the row is invalid (first problem), when it is. */
  invalid?: string;
  /** Medians over the rounds. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  mibPerS: number;
  cpuUsPerRequest?: number;
  cpuMsPerMiB?: number;
}

export interface RunRowsOptions {
  loadgen: LoadGenerator;
  rounds: number;
  durationS: number;
  warmupS: number;
  threads: number;
  /** Probe requests before and after the load. */
  probes: number;
  /**
   * Rows that run next to each other in every round (a target's rows and their A/A copy), so that their
   * per-round ratio compares rows measured seconds apart, not minutes. Blocks rotate from round to round
   * like single rows; inside a block the order flips every round (A B, B A, …) so neither row always
   * runs first.
   */
  blocks?: readonly (readonly string[])[];
  /** Groups of CPUs whose busy share is read around every round (e.g. { worker: [1], rest: [0] } when pinned). */
  cores?: Readonly<Record<string, readonly number[]>>;
  log: (line: string) => void;
}

/**
 * The order of the rows in round `round` (1-based): units (a block, or a row in no block) in the rows' order,
 * rotated by round − 1; each block reversed in even rounds. Ids not among `ids` are ignored. Pure.
 */
export function roundOrder(ids: readonly string[], blocks: readonly (readonly string[])[], round: number): string[] {
  const units: string[][] = [];
  const placed = new Set<string>();
  for (const id of ids) {
    if (placed.has(id)) continue;
    const block = blocks.find((b) => b.includes(id));
    const unit = block ? block.filter((x) => ids.includes(x)) : [id];
    for (const x of unit) placed.add(x);
    units.push(unit);
  }
  const shift = (round - 1) % Math.max(1, units.length);
  const rotated = [...units.slice(shift), ...units.slice(0, shift)];
  return rotated.flatMap((u) => (round % 2 === 0 ? [...u].reverse() : u));
}

const MiB = 2 ** 20;

function fmtN(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

/** Per-round figures and their medians; pure. */
export function summarize(spec: RowSpec, rounds: RoundResult[], before: string[], after: string[]): RowOutcome {
  const errors = rounds.reduce((a, r) => a + r.errors, 0);
  const requests = rounds.reduce((a, r) => a + r.requests, 0);
  const cpuRounds = rounds.filter((r) => r.cpuS !== undefined);
  let invalid: string | undefined;
  if (before.length) invalid = `before the load: ${before[0]}${before.length > 1 ? ` (+${before.length - 1} more)` : ""}`;
  else if (rounds.length === 0) invalid = "no load was run";
  else if (errors) invalid = `${errors} errors (socket errors, timeouts, 4xx/5xx) in ${requests} requests under load`;
  else if (requests === 0) invalid = "no request completed under load";
  // A round in which nothing completed is a stall (requests still waiting when the load generator stopped
  // count as neither requests nor errors), never a fast round: its row proves nothing.
  else if (rounds.some((r) => r.requests === 0)) invalid = `no request completed in ${rounds.filter((r) => r.requests === 0).length} of ${rounds.length} rounds (a stall)`;
  else if (after.length) invalid = `after the load: ${after[0]}${after.length > 1 ? ` (+${after.length - 1} more)` : ""}`;
  return {
    spec,
    rounds,
    before,
    after,
    errors,
    requests,
    valid: invalid === undefined,
    ...(invalid ? { invalid } : {}),
    rps: median(rounds.map((r) => r.rps)),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    mibPerS: median(rounds.map((r) => (r.rps > 0 ? r.bytes / MiB / (r.requests / r.rps) : 0))),
    ...(cpuRounds.length
      ? {
          cpuUsPerRequest: median(cpuRounds.map((r) => (r.cpuS! / Math.max(1, r.requests)) * 1e6)),
          cpuMsPerMiB: median(cpuRounds.map((r) => (r.cpuS! * 1000) / Math.max(1e-9, r.bytes / MiB))),
        }
      : {}),
  };
}

/** Busy share of each CPU group between two readings. Pure. */
function busyOf(cores: Readonly<Record<string, readonly number[]>>, before: ReturnType<typeof readCpuTicks>, after: ReturnType<typeof readCpuTicks>): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const [name, cpus] of Object.entries(cores)) {
    const share = busyShare(before, after, cpus);
    if (share !== undefined) out[name] = share;
  }
  return Object.keys(out).length ? out : undefined;
}

async function load(o: RunRowsOptions, row: RowSpec, durationS: number): Promise<RoundResult> {
  const ticks0 = o.cores ? readCpuTicks() : undefined;
  const t0 = performance.now();
  const cpu0 = row.cpuSeconds?.();
  const r = await o.loadgen.run({
    url: row.url + row.path,
    ...(row.host ? { host: row.host } : {}),
    ...(row.headers ? { headers: row.headers } : {}),
    ...(row.timeoutS ? { timeoutS: row.timeoutS } : {}),
    connections: row.connections,
    threads: o.threads,
    durationS,
  });
  const cpu1 = row.cpuSeconds?.();
  const wallS = (performance.now() - t0) / 1000;
  const busy = o.cores && ticks0 ? busyOf(o.cores, ticks0, readCpuTicks()) : undefined;
  const loadAvg = os.loadavg()[0]!;
  return { ...r, ...(cpu0 !== undefined && cpu1 !== undefined ? { cpuS: cpu1 - cpu0 } : {}), loadAvg, wallS, ...(busy ? { busy } : {}) };
}

/** The rows that run in round `round` of `rounds`: each row's own count (RowSpec.rounds), at most `rounds`. Pure. */
export function liveIn<T extends Pick<RowSpec, "rounds">>(rows: readonly T[], round: number, rounds: number): T[] {
  return rows.filter((r) => round <= Math.min(rounds, r.rounds ?? rounds));
}

export async function runRows(rows: readonly RowSpec[], o: RunRowsOptions): Promise<RowOutcome[]> {
  const before = new Map<string, string[]>();
  const answers = new Map<string, number[]>();
  for (const row of rows) {
    const { problems, answerBytes } = await verifyRowAnswers(row.url, row.host, row.path, row.expect, o.probes);
    before.set(row.id, problems);
    answers.set(row.id, answerBytes);
    if (problems.length) o.log(`  ${row.id}: INVALID before the load: ${problems[0]}`);
  }
  const live = rows.filter((r) => before.get(r.id)!.length === 0);
  const rounds = new Map<string, RoundResult[]>(rows.map((r) => [r.id, []]));
  if (live.length) o.log(`  warm-up ${o.warmupS}s per row (${live.map((r) => r.id).join(" ")})`);
  for (const row of live) if (o.warmupS > 0) await load(o, row, o.warmupS);
  for (let round = 1; round <= o.rounds; round++) {
    // Rotate the order each round so no row always runs right after another; a block's rows stay adjacent.
    const order = roundOrder(liveIn(live, round, o.rounds).map((r) => r.id), o.blocks ?? [], round).map((id) => live.find((r) => r.id === id)!);
    for (const row of order) {
      const r = await load(o, row, Math.max(o.durationS, row.durationS ?? 0));
      rounds.get(row.id)!.push(r);
      const cpu = r.cpuS !== undefined ? `, CPU ${fmtN((r.cpuS / Math.max(1, r.requests)) * 1e6, 0)} µs/req` : "";
      const busy = r.busy ? `, busy ${Object.entries(r.busy).map(([k, v]) => `${k} ${Math.round(v * 100)}%`).join(" ")}` : "";
      o.log(`  round ${round}/${Math.min(o.rounds, row.rounds ?? o.rounds)} ${row.id}: ${fmtN(r.rps, 0)} req/s, p50 ${fmtN(r.p50Ms, 2)} ms, p99 ${fmtN(r.p99Ms, 2)} ms${cpu}${busy}${r.errors ? `, ${r.errors} ERRORS` : ""}`);
    }
  }
  const out: RowOutcome[] = [];
  for (const row of rows) {
    const measured = rounds.get(row.id)!;
    const after = measured.length ? await verifyRow(row.url, row.host, row.path, row.expect, o.probes) : [];
    const outcome = { ...summarize(row, measured, before.get(row.id)!, after), answerBytes: answers.get(row.id)! };
    if (!outcome.valid && measured.length) o.log(`  ${row.id}: INVALID: ${outcome.invalid}`);
    out.push(outcome);
  }
  return out;
}

/** A row's figures round by round (index = round, so two rows' arrays pair up; NaN where not measured). Pure. */
export const perRound = {
  rps: (r: Pick<RowOutcome, "rounds">) => r.rounds.map((x) => x.rps),
  p50Ms: (r: Pick<RowOutcome, "rounds">) => r.rounds.map((x) => x.p50Ms),
  cpuUs: (r: Pick<RowOutcome, "rounds">) => r.rounds.map((x) => (x.cpuS === undefined ? NaN : (x.cpuS / Math.max(1, x.requests)) * 1e6)),
  cpuMsPerMiB: (r: Pick<RowOutcome, "rounds">) => r.rounds.map((x) => (x.cpuS === undefined ? NaN : (x.cpuS * 1000) / Math.max(1e-9, x.bytes / MiB))),
  /** Busy share (0–1) of a CPU group (RunRowsOptions.cores) in each round. */
  busy: (r: Pick<RowOutcome, "rounds">, group: string) => r.rounds.map((x) => x.busy?.[group] ?? NaN),
  /** The row's own workerd process's CPU over the round's wall time (1 = a whole core), whatever else ran there. */
  workerdShare: (r: Pick<RowOutcome, "rounds">) => r.rounds.map((x) => (x.cpuS === undefined || !x.wallS ? NaN : x.cpuS / x.wallS)),
};
