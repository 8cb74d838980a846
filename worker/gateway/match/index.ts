// Pure: HTTPRoute matches in the spec's precedence (gateway-api
// apis/v1/httproute_types.go, HTTPRouteRule.Matches). Across all rules of all
// routes on one hostname: an Exact path first, then the longest PathPrefix,
// then a method match, then the most header matches, then the most query
// matches; ties go to the oldest route (creationTimestamp), then to
// "{namespace}/{name}" alphabetically, then to the first rule and match in
// list order. RegularExpression paths are implementation-specific: here they
// rank after Exact and before PathPrefix, longer patterns first.
//
// A table is built once per snapshot change. A decision does not scan every
// entry: Exact paths are a Map lookup, PathPrefix entries are bucketed by
// their prefix (trailing "/" trimmed) and only the buckets of the request
// path's own element prefixes are read, longest first. RegularExpression
// entries are keyed by a path segment every match must contain
// (snapshot/regex-key.ts): only the keys of the request path's own segments,
// and the few unkeyed regexes, are run, in rank order, at most
// MAX_REGEX_CANDIDATES_PER_DECISION of them per decision.
import { RE2JS } from "re2js";
import type { GatewayMatch } from "../../snapshot/gateway.ts";
import { MAX_REGEX_CANDIDATES_PER_DECISION, MAX_REGEX_TEXT_PER_DECISION, regexSegmentKey } from "../../snapshot/regex-key.ts";

/** What a match needs of a request (pure data: no Request object). */
export interface MatchInput {
  method: string;
  /** The URL path, as received (percent-encoded, starts with "/"). */
  path: string;
  /** Lower-cased header name → value (repeated fields joined by ", ", as Headers does). */
  header: (name: string) => string | null;
  /** First value of a query parameter (names are case-sensitive). */
  query: (name: string) => string | null;
}

interface ValueTest {
  name: string;
  exact: string | undefined;
  re: RE2JS | undefined;
}

/** One HTTPRouteMatch of one rule, ready to test and to rank. */
export interface Entry<T> {
  kind: "Exact" | "PathPrefix" | "RegularExpression";
  /** The path value as given (PathPrefix: ranked by its length, and rewritten by ReplacePrefixMatch). */
  path: string;
  pathRe: RE2JS | undefined;
  /** A literal every path the regex matches starts with: a cheap test before running it. */
  pathLiteral: string;
  method: string | undefined;
  headers: ValueTest[];
  query: ValueTest[];
  /** Route age, namespace/name, rule index and match index: the spec's tie-breakers. */
  createdAt: number;
  routeId: string;
  rule: number;
  match: number;
  /** Insertion order (stable sort across equal entries, e.g. one route attached twice). */
  seq: number;
  /** Position in its sorted list (set when the table is built): merges an indexed bucket's candidates in rank order. */
  pos: number;
  target: T;
}

/**
 * A long list whose entries tell requests apart by one exact header (many
 * routes on one PathPrefix, one per tenant): entries with an Exact test on
 * `name` keyed by its value, and the rest. A decision reads one key's entries
 * and the rest, merged in rank order, instead of the whole list.
 */
interface HeaderIndex<T> {
  name: string;
  byValue: Map<string, Entry<T>[]>;
  rest: Entry<T>[];
}

type Bucket<T> = Entry<T>[] & { byHeader?: HeaderIndex<T> };

/** Lists at least this long get a header index. */
const INDEX_MIN = 16;

export interface EntrySource<T> {
  match: GatewayMatch;
  createdAt: number;
  routeId: string;
  rule: number;
  matchIndex: number;
  target: T;
}

export interface MatchTable<T> {
  exact: Map<string, Entry<T>[]>;
  /** Every RegularExpression entry, in rank order. */
  regex: Entry<T>[];
  /** The same entries by their segment key; "" holds the ones without a key. */
  regexByKey: Map<string, Entry<T>[]>;
  /** Keyed by the prefix with trailing "/" trimmed ("" for "/"). */
  prefix: Map<string, Entry<T>[]>;
  /** The most "/" any prefix key has: a longer slice of the request path cannot be a key (bounds the walk by the table, not the client). */
  prefixSlashes?: number;
  size: number;
}

const compiled = new Map<string, RE2JS>();
/** Compiles a pattern the schema already accepted; the same text compiles once per isolate. */
function regex(pattern: string): RE2JS {
  let re = compiled.get(pattern);
  if (!re) {
    re = RE2JS.compile(pattern);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

const NO_TESTS: ValueTest[] = [];

function valueTests(list: GatewayMatch["headers"], lower: boolean): ValueTest[] {
  // Most matches have none: one shared empty list keeps a big table's allocations down.
  if (list.length === 0) return NO_TESTS;
  const out: ValueTest[] = [];
  for (const m of list) {
    const name = lower ? m.name.toLowerCase() : m.name;
    // The spec: only the first entry with an equivalent name counts (at most 16 entries).
    if (out.some((t) => t.name === name)) continue;
    out.push({ name, exact: m.type === "Exact" ? m.value : undefined, re: m.type === "RegularExpression" ? regex(m.value) : undefined });
  }
  return out;
}

export function trimPrefix(value: string): string {
  let end = value.length;
  while (end > 0 && value.charCodeAt(end - 1) === 47 /* / */) end--;
  return value.slice(0, end);
}

/** Negative when a ranks before b (wins). */
export function compareEntries<T>(a: Entry<T>, b: Entry<T>): number {
  const ka = kindRank(a.kind);
  const kb = kindRank(b.kind);
  if (ka !== kb) return ka - kb;
  if (a.kind !== "Exact" && a.path.length !== b.path.length) return b.path.length - a.path.length;
  if ((a.method !== undefined) !== (b.method !== undefined)) return a.method !== undefined ? -1 : 1;
  if (a.headers.length !== b.headers.length) return b.headers.length - a.headers.length;
  if (a.query.length !== b.query.length) return b.query.length - a.query.length;
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  if (a.routeId !== b.routeId) return a.routeId < b.routeId ? -1 : 1;
  if (a.rule !== b.rule) return a.rule - b.rule;
  if (a.match !== b.match) return a.match - b.match;
  return a.seq - b.seq;
}

function kindRank(kind: Entry<unknown>["kind"]): number {
  return kind === "Exact" ? 0 : kind === "RegularExpression" ? 1 : 2;
}

export function buildMatchTable<T>(sources: EntrySource<T>[]): MatchTable<T> {
  const table: MatchTable<T> = { exact: new Map(), regex: [], regexByKey: new Map(), prefix: new Map(), size: 0 };
  let seq = 0;
  for (const s of sources) {
    const path = s.match.path;
    const entry: Entry<T> = {
      kind: path.type,
      path: path.value,
      pathRe: path.type === "RegularExpression" ? regex(path.value) : undefined,
      pathLiteral: path.type === "RegularExpression" ? literalPrefix(path.value) : "",
      method: s.match.method,
      headers: valueTests(s.match.headers, true),
      query: valueTests(s.match.queryParams, false),
      createdAt: s.createdAt,
      routeId: s.routeId,
      rule: s.rule,
      match: s.matchIndex,
      seq: seq++,
      pos: 0,
      target: s.target,
    };
    if (path.type === "Exact") push(table.exact, path.value, entry);
    else if (path.type === "PathPrefix") push(table.prefix, trimPrefix(path.value), entry);
    else table.regex.push(entry);
    table.size++;
  }
  for (const [key, list] of table.exact) table.exact.set(key, unshadowed(list.sort(compareEntries)));
  for (const [key, list] of table.prefix) table.prefix.set(key, unshadowed(list.sort(compareEntries)));
  table.regex = unshadowed(table.regex.sort(compareEntries));
  table.regex.forEach((e, i) => {
    e.pos = i;
    push(table.regexByKey, regexSegmentKey(e.path), e);
  });
  let slashes = 0;
  for (const key of table.prefix.keys()) {
    let n = 0;
    for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) === 47) n++;
    if (n > slashes) slashes = n;
  }
  table.prefixSlashes = slashes;
  for (const list of table.exact.values()) indexBucket(list);
  for (const list of table.prefix.values()) indexBucket(list);
  table.size = table.regex.length;
  for (const list of table.exact.values()) table.size += list.length;
  for (const list of table.prefix.values()) table.size += list.length;
  return table;
}

/**
 * Drops entries that can never win: one with the same path and the same
 * conditions as an entry ranked before it matches exactly when that one does.
 * Many routes repeating one match (a catch-all "/", "/healthz") then cost one
 * entry, not one per route.
 */
function unshadowed<T>(sorted: Entry<T>[]): Entry<T>[] {
  if (sorted.length < 2) return sorted;
  const seen = new Set<string>();
  const out: Entry<T>[] = [];
  for (const e of sorted) {
    const sig = signature(e);
    if (seen.has(sig)) continue;
    seen.add(sig);
    out.push(e);
  }
  return out;
}

function signature(e: Entry<unknown>): string {
  const tests = (list: ValueTest[]) => list.map((t) => [t.name, t.exact ?? null, t.re ? t.re.pattern() : null]);
  return JSON.stringify([e.kind, e.path, e.method ?? null, tests(e.headers), tests(e.query)]);
}

function push<T>(map: Map<string, Entry<T>[]>, key: string, entry: Entry<T>): void {
  const list = map.get(key);
  if (list) list.push(entry);
  else map.set(key, [entry]);
}

/**
 * What one decision may still spend on regexes (path, header and query
 * alike): runs, and characters of input fed to them (a run costs about its
 * input's length). A test the budget cannot pay for counts as not matching.
 */
interface RegexBudget {
  runs: number;
  chars: number;
  spent: boolean;
}

function newBudget(): RegexBudget {
  return { runs: MAX_REGEX_CANDIDATES_PER_DECISION, chars: MAX_REGEX_TEXT_PER_DECISION, spent: false };
}

/** Pays for one regex run over `text`; false (and the budget marked spent) when it cannot. */
function pay(budget: RegexBudget, text: string): boolean {
  if (budget.runs <= 0 || text.length > budget.chars) {
    budget.spent = true;
    return false;
  }
  budget.runs--;
  budget.chars -= text.length;
  return true;
}

function testValue(t: ValueTest, value: string | null, budget: RegexBudget): boolean {
  if (value === null) return false;
  if (t.exact !== undefined) return value === t.exact;
  return pay(budget, value) && t.re!.testExact(value);
}

/** The conditions besides the path. */
function others<T>(e: Entry<T>, input: MatchInput, budget: RegexBudget): boolean {
  if (e.method !== undefined && e.method !== input.method) return false;
  for (const h of e.headers) if (!testValue(h, input.header(h.name), budget)) return false;
  for (const q of e.query) if (!testValue(q, input.query(q.name), budget)) return false;
  return true;
}

function indexBucket<T>(list: Bucket<T>): void {
  list.forEach((e, i) => (e.pos = i));
  if (list.length < INDEX_MIN) return;
  // The header name most entries test exactly (by their first exact header test).
  const counts = new Map<string, number>();
  for (const e of list) {
    const t = e.headers.find((h) => h.exact !== undefined);
    if (t) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
  }
  let name: string | undefined;
  let best = 0;
  for (const [n, c] of counts) if (c > best) [name, best] = [n, c];
  if (name === undefined || best < INDEX_MIN / 2) return;
  const byValue = new Map<string, Entry<T>[]>();
  const rest: Entry<T>[] = [];
  for (const e of list) {
    const t = e.headers.find((h) => h.name === name && h.exact !== undefined);
    if (!t) rest.push(e);
    else push(byValue, t.exact!, e);
  }
  list.byHeader = { name, byValue, rest };
}

function firstOf<T>(list: Bucket<T> | undefined, input: MatchInput, budget: RegexBudget): Entry<T> | undefined {
  if (!list) return undefined;
  const ix = list.byHeader;
  if (!ix) {
    for (const e of list) if (others(e, input, budget)) return e;
    return undefined;
  }
  // Entries testing another value of the indexed header cannot match: skip them all.
  const value = input.header(ix.name);
  const keyed = value === null ? undefined : ix.byValue.get(value);
  const rest = ix.rest;
  let i = 0;
  let j = 0;
  const n = keyed ? keyed.length : 0;
  while (i < n || j < rest.length) {
    const e = j >= rest.length || (i < n && keyed![i]!.pos < rest[j]!.pos) ? keyed![i++]! : rest[j++]!;
    if (others(e, input, budget)) return e;
  }
  return undefined;
}

/** What a decision cost: for tests and the bench (a stand-in for CPU time, which workerd does not expose). */
export interface MatchStats {
  /** Path regexes run. */
  regexRuns: number;
  /** Regex candidates examined (at most MAX_REGEX_CANDIDATES_PER_DECISION). */
  regexCandidates?: number;
  /** Set when the budget stopped the regex search before every candidate was examined. */
  regexBudgetSpent?: boolean;
}

/** The winning match for a request, or undefined (the caller answers 404). */
export function matchRequest<T>(table: MatchTable<T>, input: MatchInput, stats?: MatchStats): Entry<T> | undefined {
  const budget = newBudget();
  const hit = matchIn(table, input, budget, stats);
  if (stats && budget.spent) stats.regexBudgetSpent = true;
  return hit;
}

function matchIn<T>(table: MatchTable<T>, input: MatchInput, budget: RegexBudget, stats: MatchStats | undefined): Entry<T> | undefined {
  const path = input.path;
  const exact = firstOf(table.exact.get(path), input, budget);
  if (exact) return exact;
  if (table.regex.length > 0) {
    const hit = firstRegex(table, input, budget, stats);
    if (hit) return hit;
  }
  if (table.prefix.size === 0) return undefined;
  // The path's element prefixes, longest first: "/a/b" → "/a/b", "/a", "" (the prefix "/").
  // A prefix matches when the path equals it or continues with "/" after it.
  // No key has more "/" than prefixSlashes: start at the slice with that many.
  let end = path.length;
  const most = table.prefixSlashes ?? Infinity;
  for (let i = 0, n = 0; i < path.length; i++) {
    if (path.charCodeAt(i) === 47 && ++n > most) {
      end = i;
      break;
    }
  }
  while (end > 0 && path.charCodeAt(end - 1) === 47) end--;
  for (;;) {
    const hit = firstOf(table.prefix.get(path.slice(0, end)), input, budget);
    if (hit) return hit;
    if (end === 0) return undefined;
    end = path.lastIndexOf("/", end - 1);
    if (end < 0) end = 0;
    // "/a//b": skip the empty element's extra slashes.
    while (end > 0 && path.charCodeAt(end - 1) === 47) end--;
  }
}

/** The regex candidates of a request: the unkeyed list and the list of each distinct keyed segment of the path (each in rank order). */
function regexCandidates<T>(table: MatchTable<T>, path: string): Entry<T>[][] {
  const byKey = table.regexByKey;
  const lists: Entry<T>[][] = [];
  const unkeyed = byKey.get("");
  if (unkeyed) lists.push(unkeyed);
  if (byKey.size === lists.length) return lists;
  let seen: Set<string> | undefined;
  let start = 1;
  for (;;) {
    const slash = path.indexOf("/", start);
    const seg = path.slice(start, slash < 0 ? path.length : slash);
    if (seg !== "") {
      const list = byKey.get(seg);
      if (list && !(seen ??= new Set()).has(seg)) {
        seen.add(seg);
        lists.push(list);
      }
    }
    if (slash < 0) break;
    start = slash + 1;
  }
  return lists;
}

/**
 * The best regex entry among the first MAX_REGEX_CANDIDATES_PER_DECISION
 * candidates in rank order: only those keyed by a segment of the path (or
 * unkeyed) can match; their lists are merged by rank (a heap over the lists'
 * heads, so a path naming a thousand keys costs a thousand map lookups and
 * the budget, not a thousand lists concatenated and sorted). Candidates past
 * the budget are not examined: the request then falls through to PathPrefix.
 */
function firstRegex<T>(table: MatchTable<T>, input: MatchInput, budget: RegexBudget, stats: MatchStats | undefined): Entry<T> | undefined {
  const path = input.path;
  const lists = regexCandidates(table, path);
  if (lists.length === 0) return undefined;
  // Routes often repeat one pattern: each distinct regex runs at most once per request.
  let tested: Map<RE2JS, boolean> | undefined;
  const matches = (e: Entry<T>): boolean => {
    if (stats) stats.regexCandidates = (stats.regexCandidates ?? 0) + 1;
    if (!path.startsWith(e.pathLiteral)) return false;
    const re = e.pathRe!;
    let ok = tested?.get(re);
    if (ok === undefined) {
      if (!pay(budget, path)) return false;
      if (stats) stats.regexRuns++;
      (tested ??= new Map()).set(re, (ok = re.testExact(path)));
    }
    return ok && others(e, input, budget);
  };
  let left = MAX_REGEX_CANDIDATES_PER_DECISION;
  if (lists.length === 1) {
    const list = lists[0]!;
    const n = Math.min(list.length, left);
    for (let i = 0; i < n; i++) if (matches(list[i]!)) return list[i];
    if (stats && list.length > n) stats.regexBudgetSpent = true;
    return undefined;
  }
  // A min-heap of list cursors by the rank (pos) of their next entry.
  const heap = lists.map((list) => ({ list, i: 0 }));
  const key = (c: { list: Entry<T>[]; i: number }) => c.list[c.i]!.pos;
  const down = (at: number) => {
    const n = heap.length;
    for (;;) {
      const l = 2 * at + 1;
      if (l >= n) return;
      const r = l + 1;
      const m = r < n && key(heap[r]!) < key(heap[l]!) ? r : l;
      if (key(heap[m]!) >= key(heap[at]!)) return;
      [heap[m], heap[at]] = [heap[at]!, heap[m]!];
      at = m;
    }
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  while (heap.length > 0) {
    if (left-- === 0 || budget.spent) {
      if (stats) stats.regexBudgetSpent = true;
      return undefined;
    }
    const top = heap[0]!;
    const e = top.list[top.i++]!;
    if (top.i >= top.list.length) {
      heap[0] = heap[heap.length - 1]!;
      heap.pop();
    }
    if (heap.length > 0) down(0);
    if (matches(e)) return e;
  }
  return undefined;
}

const META = new Set(["\\", ".", "[", "]", "(", ")", "*", "+", "?", "{", "}", "|", "^", "$"]);

/**
 * The literal text a full match of an RE2 pattern must start with ("" when
 * unsure): the characters before the first metacharacter, minus one that a
 * quantifier (or a group that may hide one) makes optional; none when the
 * pattern has a top-level "|" or starts with a flag group.
 */
export function literalPrefix(pattern: string): string {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === "\\") {
      i++;
      continue;
    }
    if (inClass) {
      if (ch === "]") inClass = false;
      continue;
    }
    if (ch === "[") inClass = true;
    else if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "|" && depth === 0) return "";
  }
  let end = 0;
  while (end < pattern.length && !META.has(pattern[end]!)) end++;
  const next = pattern[end];
  // A quantifier after a flag group applies to the literal before it: "/(?i)?" is "/?".
  if (next === "*" || next === "?" || next === "{" || next === "+" || (next === "(" && pattern[end + 1] === "?")) end = Math.max(0, end - 1);
  return pattern.slice(0, end);
}

/** Whether a PathPrefix value matches a path, element by element (the reference semantics for tests). */
export function prefixMatches(prefix: string, path: string): boolean {
  const p = trimPrefix(prefix);
  if (p === "") return true;
  return path === p || (path.startsWith(p) && path.charCodeAt(p.length) === 47);
}
