// What a request's JavaScript asks of the runtime, read from a callgrind call graph of workerd
// (bench/instructions.ts --itemize): every call from JavaScript into workerd's API (a Headers
// lookup, new Response, setTimeout, fetch(), connect()...) enters C++ through one of jsg's
// callback templates (MethodCallback, PropertyGetterCallback, ConstructorCallback, ...), one
// template instance per API member, named after the member. So the inclusive cost of the edges
// into those instances, from callers that are not themselves such instances, is what each API
// member costs per call, with no double counting; callgrind's call counts say how many calls.
// Everything the runtime does outside such calls (its event loop, I/O, fetch()'s network half, the
// request's own setup) and V8 running the JavaScript itself are the rest. Pure: tested in
// test/bench/runtime-calls.test.ts.
import { gcIr, type CallGraph } from "./callgrind.ts";

/** A jsg callback instance, mangled (most: the names are too long for the demangler) or demangled. */
const MANGLED = /^_ZN7workerd3jsg(\d+)(\w+?Callback)I/;
const DEMANGLED = /^workerd::jsg::(\w+Callback)</;

/**
 * "Class.member" for a jsg callback's function name, or undefined when the name is not one. The class
 * is the first workerd::api class the name mentions (the template's member pointer); the member is the
 * member pointer's name ("get", "getHeaders"), "constructor" for a ConstructorCallback, "?" when the
 * name does not say. Pure.
 */
export function runtimeCallName(fn: string): string | undefined {
  const mangled = MANGLED.exec(fn);
  if (mangled) {
    // The kind's length prefix must cover it exactly: "14MethodCallback".
    if (Number(mangled[1]) !== mangled[2]!.length) return undefined;
    const kind = mangled[2]!;
    const cls = apiClass(fn) ?? "?";
    if (kind === "ConstructorCallback") return `${cls}.constructor`;
    // The member pointer: &Class::member, "XadL_ZN" then the class (a substitution "S7_" or spelled) and the member.
    const at = fn.indexOf("XadL_ZN");
    const member = at === -1 ? undefined : memberAfter(fn.slice(at + 7));
    return `${cls}.${member ?? "?"}`;
  }
  const demangled = DEMANGLED.exec(fn);
  if (demangled) {
    // A constructor names its class as the template's second argument; a member is a pointer &workerd::api::Class::member
    // (classes nested or in a namespace: &workerd::api::Headers::EntryIterator::next, workerd::api::url::URL).
    if (demangled[1] === "ConstructorCallback") {
      const cls = /_TypeWrapper, workerd::api::([\w:]+)[,>]/.exec(fn)?.[1];
      return `${cls ? cls.replaceAll("::", ".") : "?"}.constructor`;
    }
    const ptr = /&workerd::api::([\w:]+)::(\w+)/.exec(fn);
    return ptr ? `${ptr[1]!.replaceAll("::", ".")}.${ptr[2]}` : `${/workerd::api::([\w:]+?)(?:::\w+)?[,>(]/.exec(fn)?.[1]?.replaceAll("::", ".") ?? "?"}.?`;
  }
  return undefined;
}

/**
 * The workerd::api class a mangled name mentions first, nested classes included ("3api7Headers13EntryIterator
 * 15registerMembers" is Headers.EntryIterator): the length-prefixed names after "3api" up to registerMembers.
 */
function apiClass(s: string): string | undefined {
  const at = s.indexOf("3api");
  if (at === -1) return undefined;
  const parts: string[] = [];
  let rest = s.slice(at + 4);
  for (;;) {
    const m = /^(\d+)/.exec(rest);
    if (!m) break;
    const n = Number(m[1]);
    const name = rest.slice(m[0].length, m[0].length + n);
    if (name.length !== n || !/^[A-Za-z_]\w*$/.test(name) || name === "registerMembers") break;
    parts.push(name);
    rest = rest.slice(m[0].length + n);
  }
  return parts.length ? parts.join(".") : undefined;
}

/** After "XadL_ZN": an optional substitution (S_, S7_, SA_) or a spelled class, then the member's length-prefixed name. */
function memberAfter(s: string): string | undefined {
  let rest = s;
  const sub = /^S[0-9A-Z]*_/.exec(rest);
  if (sub) rest = rest.slice(sub[0].length);
  // Spelled names (namespace, class) come before the member: the member is the last one before "E".
  let last: string | undefined;
  for (;;) {
    const m = /^(\d+)/.exec(rest);
    if (!m) break;
    const n = Number(m[1]);
    const name = rest.slice(m[0].length, m[0].length + n);
    if (name.length !== n || !/^[A-Za-z_]\w*$/.test(name)) break;
    last = name;
    rest = rest.slice(m[0].length + n);
    if (!/^\d/.test(rest)) break;
  }
  return last;
}

/** One API member's calls from JavaScript in a dump: inclusive Ir and number of calls. */
export interface RuntimeCall {
  name: string;
  ir: number;
  calls: number;
}

/**
 * The calls from JavaScript into workerd's API in a call graph, by "Class.member", largest first:
 * the edges into jsg callback instances from callers that are not callback instances. `counts` are
 * callgrind's call counts per edge (parseCallGraph's callCounts). Pure.
 */
export function runtimeCalls(g: CallGraph): RuntimeCall[] {
  const by = new Map<string, RuntimeCall>();
  const nameOf = new Map<string, string | undefined>();
  const named = (fn: string) => {
    if (!nameOf.has(fn)) nameOf.set(fn, runtimeCallName(fn));
    return nameOf.get(fn);
  };
  for (const [caller, callees] of g.calls) {
    if (named(caller) !== undefined) continue;
    for (const [callee, ir] of callees) {
      const name = named(callee);
      if (name === undefined) continue;
      const e = by.get(name) ?? { name, ir: 0, calls: 0 };
      e.ir += ir;
      e.calls += g.callCounts?.get(caller)?.get(callee) ?? 0;
      by.set(name, e);
    }
  }
  return [...by.values()].sort((a, b) => b.ir - a.ir);
}

/** Self Ir of JIT-compiled code (callgrind names code with no symbol by its address) and of V8's builtins. Pure. */
export function javascriptIr(g: CallGraph): { jit: number; builtins: number } {
  let jit = 0;
  let builtins = 0;
  for (const [fn, ir] of g.self) {
    if (/^0x[0-9a-f]+$/i.test(fn)) jit += ir;
    else if (fn.startsWith("Builtins_")) builtins += ir;
  }
  return { jit, builtins };
}

/**
 * A dump's instructions split for the itemized gap: per API member, GC, and the rest; per request. A collection
 * that an allocation inside a call sets off is in that call's inclusive cost and in `gc` both (callgrind's edges
 * cannot split it out), so the rest is a lower bound by that much (a few k per request in workerd's dumps).
 */
export interface Itemized {
  requests: number;
  total: number;
  calls: RuntimeCall[];
  gc: number;
  jit: number;
  builtins: number;
}

export function itemize(g: CallGraph, total: number, requests: number): Itemized {
  const { jit, builtins } = javascriptIr(g);
  return { requests, total, calls: runtimeCalls(g), gc: gcIr(g), jit, builtins };
}

/**
 * Whether a run's JavaScript stayed in V8's interpreter: V8's builtins (the interpreter's bytecode handlers among
 * them) over `maxShare` of all its instructions. Such a run (seen: builtins 104.8 k of 546.7 k per request, JIT code
 * 1.1 k, against 15.8 k of 470 k compiled) counts ~15% more and must not stand for the row. Pure.
 */
export function interpreted(x: Itemized, maxShare = 0.1): boolean {
  return x.builtins > x.total * maxShare;
}

/** The run whose total is the median (the lower middle one of an even count); undefined for none. Pure. */
export function medianRun(runs: readonly Itemized[]): Itemized | undefined {
  if (runs.length === 0) return undefined;
  const sorted = [...runs].sort((a, b) => a.total / a.requests - b.total / b.requests);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

const k = (x: number) => `${x >= 0 ? "" : "−"}${(Math.abs(x) / 1000).toFixed(1)} k`;
const signed = (x: number) => `${x >= 0 ? "+" : "−"}${(Math.abs(x) / 1000).toFixed(1)} k`;

/**
 * The gap between two rows, item by item, per request: each API member's Ir and calls in both, the
 * garbage collection, and the rest (everything outside calls from JavaScript into the API and GC:
 * V8 running the JavaScript, the event loop, I/O, the request's own setup), so the items add up to
 * the whole difference. Members whose difference is under `minIr` per request are summed in one
 * line. Pure.
 */
export function gapTable(base: Itemized, row: Itemized, labels: [string, string], minIr = 1000): string {
  const per = (x: Itemized, v: number) => v / x.requests;
  const names = new Set([...base.calls, ...row.calls].map((c) => c.name));
  const find = (x: Itemized, n: string) => x.calls.find((c) => c.name === n) ?? { name: n, ir: 0, calls: 0 };
  const lines: { item: string; a: number; b: number; note: string }[] = [];
  let smallA = 0;
  let smallB = 0;
  let smallN = 0;
  for (const n of names) {
    const a = find(base, n);
    const b = find(row, n);
    const ia = per(base, a.ir);
    const ib = per(row, b.ir);
    if (Math.abs(ib - ia) < minIr) {
      smallA += ia;
      smallB += ib;
      smallN++;
      continue;
    }
    const ca = a.calls / base.requests;
    const cb = b.calls / row.requests;
    lines.push({ item: n, a: ia, b: ib, note: `${fmtCalls(ca)} → ${fmtCalls(cb)} calls${cb > 0 ? `, ${k(ib / cb)} each` : ""}` });
  }
  lines.sort((x, y) => Math.abs(y.b - y.a) - Math.abs(x.b - x.a));
  const sum = (x: Itemized) => x.calls.reduce((t, c) => t + c.ir, 0);
  if (smallN > 0) lines.push({ item: `${smallN} other API members (each under ${k(minIr)} apart)`, a: smallA, b: smallB, note: "" });
  lines.push({ item: "garbage collection", a: per(base, base.gc), b: per(row, row.gc), note: "" });
  const restA = per(base, base.total - sum(base) - base.gc);
  const restB = per(row, row.total - sum(row) - row.gc);
  lines.push({ item: "the rest (V8 running JavaScript, the event loop, I/O, request setup; a lower bound: GC inside a call counts in both)", a: restA, b: restB, note: `of all instructions, JIT code ${k(per(base, base.jit))} → ${k(per(row, row.jit))}, V8 builtins ${k(per(base, base.builtins))} → ${k(per(row, row.builtins))}` });
  const out = [`item | ${labels[0]} | ${labels[1]} | difference | calls per request`, "---|---|---|---|---"];
  for (const l of lines) out.push(`${l.item} | ${k(l.a)} | ${k(l.b)} | ${signed(l.b - l.a)} | ${l.note}`);
  out.push(`total | ${k(per(base, base.total))} | ${k(per(row, row.total))} | ${signed(per(row, row.total) - per(base, base.total))} | –`);
  return out.join("\n");
}

function fmtCalls(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}
