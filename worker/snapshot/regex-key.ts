// Pure: the index key of a RegularExpression path match, shared by the agent
// (which caps how many regexes may share one key on a hostname) and the worker
// (which indexes a hostname's regexes by it). Both must compute the same key,
// so it lives here, beside the snapshot contract.
//
// The key is one whole path segment every fully matching path must contain:
// `(/v[0-9]+)?/r17/.*` → "r17", `/static/[a-z]+\.js` → "static". A decision
// then runs only the regexes keyed by one of the request path's own segments
// (a Map lookup each), plus the few without a key.
//
// Conservative by construction: the pattern is read as a top-level
// concatenation; only runs of plain literal characters outside any group,
// class or quantifier count, and any construct this reader does not fully
// understand (a top-level "|", flag groups, \Q…\E, unknown escapes) gives no
// key. No key is always safe: the regex is then run for every request.

/** Escapes that stand for one literal character (punctuation; RE2 allows escaping any). */
const LITERAL_ESCAPE = /^[!-\/:-@\[-`{-~]$/;
/** Characters this reader gives up on where an item should start: a stray closer, an inner "^", a top-level "|", a quantifier with nothing before it. */
const UNREAD = new Set(["^", "|", ")", "]", "}", "*", "+", "?", "{"]);

/**
 * The items that may consume characters, by their first character: the index
 * after the item and its quantifiers, or -1 when this reader is unsure. A
 * plain character with a quantifier after it is such an item too (QUANTIFIED_CHAR).
 */
const ITEM_END: Record<string, (pattern: string, at: number) => number> = {
  // Flag or named groups are not read here; "(?:" is.
  "(": (pattern, at) => (pattern[at + 1] === "?" && pattern[at + 2] !== ":" ? -1 : afterQuantifier(pattern, groupEnd(pattern, at))),
  "[": (pattern, at) => afterQuantifier(pattern, classEnd(pattern, at)),
  ".": (pattern, at) => skipQuantifier(pattern, at + 1),
};
const QUANTIFIED_CHAR = (pattern: string, at: number) => skipQuantifier(pattern, at + 1);

/** A quantifier makes the item before it optional or repeated: that item is not required as is. */
function quantified(pattern: string, at: number): boolean {
  const ch = pattern[at];
  return ch === "*" || ch === "+" || ch === "?" || ch === "{";
}

/**
 * The required literal runs of a pattern: [text, starts the match, ends the
 * match]. Undefined when the pattern is outside what this reader trusts.
 */
function literalRuns(pattern: string): { text: string; atStart: boolean; atEnd: boolean }[] | undefined {
  const runs: { text: string; atStart: boolean; atEnd: boolean }[] = [];
  let run = "";
  let runStart = true; // the current run began at the start of the match
  let consumedBefore = false; // something that may consume characters came before the current run
  const close = (atEnd: boolean) => {
    if (run) runs.push({ text: run, atStart: runStart && !consumedBefore, atEnd });
    run = "";
  };
  let i = pattern[0] === "^" ? 1 : 0;
  while (i < pattern.length) {
    const ch = pattern[i]!;
    if (ch === "$") {
      // Only a final "$" (end of text) is understood; it ends the match where the run ends.
      if (i !== pattern.length - 1) return undefined;
      close(true);
      return runs;
    }
    if (ch === "\\") {
      const next = pattern[i + 1];
      if (next === undefined || !LITERAL_ESCAPE.test(next)) return undefined; // \d, \Q, \p{…}, \x…: not read here
      if (quantified(pattern, i + 2)) return undefined; // an escaped character with a quantifier: not read here
      run += next;
      i += 2;
      continue;
    }
    if (UNREAD.has(ch)) return undefined;
    const itemEnd = ITEM_END[ch] ?? (quantified(pattern, i + 1) ? QUANTIFIED_CHAR : undefined);
    if (itemEnd) {
      // It may consume any characters (or none): the run before it ends, and no run after it starts the match.
      i = itemEnd(pattern, i);
      if (i < 0) return undefined;
      close(false);
      consumedBefore = true;
      continue;
    }
    if (run === "") runStart = !consumedBefore;
    run += ch;
    i++;
  }
  close(true);
  return runs;
}

/** The index after the quantifiers following a closer at `end`, or -1 when there is no closer (-1) or unsure. */
function afterQuantifier(pattern: string, end: number): number {
  return end < 0 ? -1 : skipQuantifier(pattern, end + 1);
}

/** Index of the ")" closing the group opened at `open`, or -1. Any top-level "|" inside is the group's own business. */
function groupEnd(pattern: string, open: number): number {
  let depth = 0;
  for (let i = open; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === "\\") {
      i++;
      continue;
    }
    if (ch === "[") {
      i = classEnd(pattern, i);
      if (i < 0) return -1;
      continue;
    }
    if (ch === "(") depth++;
    else if (ch === ")" && --depth === 0) return i;
  }
  return -1;
}

/** Index of the "]" closing the class opened at `open`, or -1 (a "]" right after "[" or "[^" is a member). */
function classEnd(pattern: string, open: number): number {
  let i = open + 1;
  if (pattern[i] === "^") i++;
  if (pattern[i] === "]") i++;
  for (; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === "\\") i++;
    else if (ch === "[" && pattern[i + 1] === ":") {
      const end = pattern.indexOf(":]", i + 2);
      if (end < 0) return -1;
      i = end + 1;
    } else if (ch === "]") return i;
  }
  return -1;
}

/** The index after any quantifiers at `at` ("*", "+", "?", "{n,m}", and a lazy "?"), or -1 when unsure. */
function skipQuantifier(pattern: string, at: number): number {
  let i = at;
  while (i < pattern.length) {
    const ch = pattern[i];
    if (ch === "*" || ch === "+" || ch === "?") i++;
    else if (ch === "{") {
      const end = pattern.indexOf("}", i);
      if (end < 0 || !/^\{\d+(,\d*)?\}$/.test(pattern.slice(i, end + 1))) return -1;
      i = end + 1;
    } else break;
  }
  return i;
}

/**
 * A whole path segment every path the pattern fully matches has, or "" when
 * none can be proven. A segment is the text between two "/" (or between a
 * "/" and the end of the path); the path starts with "/", so a run at the
 * start of the match proves a segment only when its "/"s enclose it.
 */
export function regexSegmentKey(pattern: string): string {
  if (pattern.length > 1024) return "";
  const runs = literalRuns(pattern);
  if (!runs) return "";
  let best = "";
  for (const r of runs) {
    const parts = r.text.split("/");
    // parts[0] and the last part are cut by whatever comes before and after the run,
    // unless the run ends the match (then the last part is the path's last segment).
    const last = parts.length - 1;
    for (let k = 1; k <= last; k++) {
      const whole = k < last || r.atEnd;
      const seg = parts[k]!;
      // The longest proven segment: the rarer it is among requests, the fewer regexes a decision runs.
      if (whole && seg.length > best.length) best = seg;
    }
  }
  return best;
}

/** A path's segments as regexSegmentKey sees them: "/a/b/" → "a", "b", "". */
export function pathSegments(path: string): string[] {
  return path.split("/").slice(1);
}

/**
 * Most distinct RegularExpression path patterns one hostname's routes may hold
 * under one index key, or without a key (each group counted on its own). Each
 * distinct pattern runs at most once per request, so a decision runs at most
 * this many regexes per distinct segment of the request path, plus this many
 * without a key. The agent refuses the routes beyond it (the oldest routes
 * keep their place) and the worker refuses a snapshot that exceeds it.
 */
export const MAX_REGEX_PATHS_PER_KEY = 64;

/**
 * Most RegularExpression candidates one decision examines (each runs its regex
 * at most once). The candidates are the hostname's regexes keyed by a segment
 * of the request path plus the unkeyed ones, taken in rank order (longer
 * patterns first, then the usual tie-breakers). A path naming many keys
 * (`/r1/r2/…/r999`) would otherwise run up to MAX_REGEX_PATHS_PER_KEY regexes
 * per segment. Twice the per-key cap, so a path with one keyed segment (plus
 * the unkeyed regexes) is never cut short: only a path naming several keys
 * can reach it. Beyond it, the remaining candidates are treated as not
 * matching and the request goes on to the PathPrefix matches, as if no regex
 * matched (the spec leaves RegularExpression matching to the implementation).
 */
export const MAX_REGEX_CANDIDATES_PER_DECISION = 2 * MAX_REGEX_PATHS_PER_KEY;

/**
 * Most characters of request text (path, header and query values) one
 * decision feeds to regexes in total: a run costs about its input's length,
 * and a client chooses the input (URLs up to 16 KB, headers more). A regex
 * test that would go past it, or past MAX_REGEX_CANDIDATES_PER_DECISION runs,
 * counts as not matching: e.g. 128 runs over a 256-byte path, 8 over a 4 KB
 * one, none over a value longer than this.
 */
export const MAX_REGEX_TEXT_PER_DECISION = 32_768;

/** Counts a hostname's distinct regex path patterns per key; says which group went over the cap first. */
export class RegexKeyBudget {
  private readonly patterns = new Map<string, Set<string>>();

  /** The regex path patterns a route brings to each hostname × key group. */
  static demand(route: { hostnames: readonly string[]; rules: readonly { matches?: readonly { path?: { type: string; value: string } }[] }[] }): Map<string, Set<string>> {
    const perKey = new Map<string, Set<string>>();
    for (const rule of route.rules) {
      for (const m of rule.matches ?? []) {
        if (m.path?.type !== "RegularExpression") continue;
        const key = regexSegmentKey(m.path.value);
        let set = perKey.get(key);
        if (!set) perKey.set(key, (set = new Set()));
        set.add(m.path.value);
      }
    }
    const out = new Map<string, Set<string>>();
    for (const host of new Set(route.hostnames)) for (const [key, set] of perKey) out.set(`${host}\n${key}`, set);
    return out;
  }

  /** Why the route cannot be added (and then nothing is counted), or undefined when it fits and is counted. */
  admit(demand: Map<string, Set<string>>): string | undefined {
    for (const [group, wanted] of demand) {
      const have = this.patterns.get(group);
      let n = have?.size ?? 0;
      for (const p of wanted) if (!have?.has(p)) n++;
      if (n > MAX_REGEX_PATHS_PER_KEY) return describe(group, n);
    }
    for (const [group, wanted] of demand) {
      let have = this.patterns.get(group);
      if (!have) this.patterns.set(group, (have = new Set()));
      for (const p of wanted) have.add(p);
    }
    return undefined;
  }
}

function describe(group: string, n: number): string {
  const [host, key] = group.split("\n") as [string, string];
  const which = key ? `sharing the path segment ${JSON.stringify(key)}` : "with no literal path segment every match must contain";
  return `hostname ${host} would have ${n} distinct RegularExpression path patterns ${which}, more than the edge allows (${MAX_REGEX_PATHS_PER_KEY}): a literal segment such as "/tenant-a/" in each pattern lets the edge index them`;
}

/** The first hostname × key group over the cap in a snapshot's routes, or undefined. */
export function regexKeyOverflow(routes: Parameters<typeof RegexKeyBudget.demand>[0][]): string | undefined {
  const budget = new RegexKeyBudget();
  for (const r of routes) {
    const why = budget.admit(RegexKeyBudget.demand(r));
    if (why) return why;
  }
  return undefined;
}
