// bench/lib/runtime-calls.ts: which calls from JavaScript into workerd's API a callgrind dump shows, what
// each costs, and the gap between two rows item by item, adding up to the whole. The function names are
// real ones, from a callgrind dump of workerd (the npm package's binary, compatibility date 2026-04-01).
import { describe, expect, it } from "vitest";
import { parseCallGraph } from "../../bench/lib/callgrind.ts";
import { gapTable, interpreted, itemize, medianRun, runtimeCallName, runtimeCalls } from "../../bench/lib/runtime-calls.ts";

const HEADERS_GET = "_ZN7workerd3jsg14MethodCallbackINS_6server12_GLOBAL__N_129JsgWorkerdIsolate_TypeWrapperEXadsoKcL_ZZNS_3api7Headers15registerMembersINS0_19ResourceTypeBuilderIS4_S7_Lb0EEES7_EEvRT_NS_18CompatibilityFlags6ReaderEE4NAMEEEELb0ES7_MS7_FN2kj5MaybeINSF_6StringEEERNS0_4LockESH_EXadL_ZNS7_3getESK_SH_EENSF_1_7IndexesIJLm0EEEEE8callbackERKN2v820FunctionCallbackInfoINSR_5ValueEEE";
const RESPONSE_HEADERS = "_ZN7workerd3jsg22PropertyGetterCallbackINS_6server12_GLOBAL__N_129JsgWorkerdIsolate_TypeWrapperEXadsoKcL_ZZNS_3api8Response15registerMembersINS0_19ResourceTypeBuilderIS4_S7_Lb0EEES7_EEvRT_NS_18CompatibilityFlags6ReaderEE4NAME_5EEEMS7_FNS0_3RefINS6_7HeadersEEERNS0_4LockEEXadL_ZNS7_10getHeadersESJ_EELb0EE8callbackERKN2v820FunctionCallbackInfoINSN_5ValueEEE";
const SUBTLE_SIGN = "_ZN7workerd3jsg14MethodCallbackINS_6server12_GLOBAL__N_129JsgWorkerdIsolate_TypeWrapperEXadsoKcL_ZZNS_3api12SubtleCrypto15registerMembersINS0_19ResourceTypeBuilderIS4_S7_Lb0EEES7_EEvRT_E4NAME_1EEELb0ES7_MS7_FNS0_7PromiseINS0_5JsRefINS0_13JsArrayBufferEEEEERNS0_4LockEN2kj5OneOfIJNSK_6StringENS7_13SignAlgorithmEEEERKNS6_9CryptoKeyENSK_5ArrayIKhEEEXadL_ZNS7_4signESJ_SO_SR_SU_EENSK_1_7IndexesIJLm0ELm1ELm2EEEEE8callbackERKN2v820FunctionCallbackInfoINS11_5ValueEEE";
const RESPONSE_NEW = "workerd::jsg::ConstructorCallback<workerd::server::(anonymous namespace)::JsgWorkerdIsolate_TypeWrapper, workerd::api::Response, workerd::jsg::Ref<workerd::api::Response> (workerd::jsg::Lock&, workerd::jsg::Optional<kj::Maybe<kj::OneOf<workerd::jsg::Ref<workerd::api::ReadableStream>, kj::String, workerd::jsg::JsRef<workerd::jsg::JsBufferSource>, workerd::jsg::Ref<workerd::api::Blob>, workerd::jsg::Ref<workerd::api::FormData>, workerd::jsg::Ref<workerd::api::URLSearchParams>, workerd::jsg::Ref<workerd::api::url::URLSearchParams>, workerd::jsg::AsyncGeneratorIgnoringStrings<workerd::jsg::V8Ref<v8::Value> > > > >, workerd::jsg::Optional<kj::OneOf<workerd::api::Response::InitializerDict, workerd::jsg::Ref<workerd::api::Response> > >), kj::_::Indexes<0ul, 1ul> >::callback(v8::FunctionCallbackInfo<v8::Value> const&)";
const HEADERS_NEXT = "_ZN7workerd3jsg14MethodCallbackINS_6server12_GLOBAL__N_129JsgWorkerdIsolate_TypeWrapperEXadsoKcL_ZZNS_3api7Headers13EntryIterator15registerMembersINS0_19ResourceTypeBuilderIS4_S8_Lb0EEES8_EEvRT_E4NAME_0EEELb0ES8_MS8_FNS0_12IteratorBaseIS8_N2kj5ArrayINSF_6StringEEENS7_13IteratorStateINS7_15DisplayedHeaderEEEE4NextERNS0_4LockEEXadL_ZNS8_4nextESP_EENSF_1_7IndexesIJEEEE8callbackERKN2v820FunctionCallbackInfoINSW_5ValueEEE";
/** An argument conversion: mentions "Callback" among the classes it lists, but is no API member. */
const UNWRAP = "_ZN7workerd3jsg11TypeWrapperINS_6server12_GLOBAL__N_129JsgWorkerdIsolate_TypeWrapperEJNS0_12DOMExceptionENS_3api17WorkerGlobalScopeENS6_19PerformanceObserverENSFF_14ObserveOptionsENSFF_15CallbackEEE6unwrapINS0_8FunctionIFvNS0_9ArgumentsIS7N_EEEEEEENS0_16RemoveRvalueRef_IT_E4TypeERNS0_4LockE";

describe("runtimeCallName", () => {
  it("names methods, getters and constructors by class and member, mangled or demangled", () => {
    expect(runtimeCallName(HEADERS_GET)).toBe("Headers.get");
    expect(runtimeCallName(RESPONSE_HEADERS)).toBe("Response.getHeaders");
    expect(runtimeCallName(SUBTLE_SIGN)).toBe("SubtleCrypto.sign");
    expect(runtimeCallName(RESPONSE_NEW)).toBe("Response.constructor");
    // A nested class: the iterator Headers.entries() returns.
    expect(runtimeCallName(HEADERS_NEXT)).toBe("Headers.EntryIterator.next");
  });

  it("names demangled members by the whole class path, namespaces and nested classes included (rv12 8)", () => {
    const T = "workerd::server::(anonymous namespace)::JsgWorkerdIsolate_TypeWrapper";
    expect(runtimeCallName(`workerd::jsg::ConstructorCallback<${T}, workerd::api::url::URL, workerd::jsg::Ref<workerd::api::url::URL> (workerd::jsg::Lock&, kj::String)>::callback(v8::FunctionCallbackInfo<v8::Value> const&)`)).toBe("url.URL.constructor");
    expect(runtimeCallName(`workerd::jsg::MethodCallback<${T}, "next", false, workerd::api::Headers::EntryIterator, kj::Maybe<kj::Array<kj::String> > (workerd::api::Headers::EntryIterator::*)(workerd::jsg::Lock&), &workerd::api::Headers::EntryIterator::next, kj::_::Indexes<> >::callback(v8::FunctionCallbackInfo<v8::Value> const&)`)).toBe("Headers.EntryIterator.next");
    expect(runtimeCallName(`workerd::jsg::StaticMethodCallback<${T}, "timeout", workerd::api::AbortSignal, workerd::jsg::Ref<workerd::api::AbortSignal> (*)(workerd::jsg::Lock&, double), &workerd::api::AbortSignal::timeout, kj::_::Indexes<0ul> >::callback(v8::FunctionCallbackInfo<v8::Value> const&)`)).toBe("AbortSignal.timeout");
  });

  it("is undefined for anything else: argument conversions, JIT code, the API's own C++", () => {
    expect(runtimeCallName(UNWRAP)).toBeUndefined();
    expect(runtimeCallName("0x00000000639e0800")).toBeUndefined();
    expect(runtimeCallName("workerd::api::Headers::get(workerd::jsg::Lock&, kj::String)")).toBeUndefined();
    expect(runtimeCallName("Builtins_CallApiCallback")).toBeUndefined();
    // A kind whose length prefix does not cover it is not a callback template.
    expect(runtimeCallName("_ZN7workerd3jsg9MethodCallbackINS_3api7HeadersE")).toBeUndefined();
  });
});

/** A callgrind dump (format version 1, name compression) of one request's worth of calls. */
function dump(lines: string[], summary: number): string {
  return ["version: 1", "positions: line", "events: Ir", `summary: ${summary}`, "", ...lines, ""].join("\n");
}

// JIT code calls Headers.get three times (6,000 Ir with what it calls), an argument conversion once, and
// new Response once; inside new Response the runtime reads the headers through the getter's own callback
// (a callback called by a callback: counted once, in new Response).
const ROW = dump(
  [
    "fn=(1) 0x00000000639e0800",
    "1 3000",
    `cfn=(2) ${HEADERS_GET}`,
    "calls=3 0",
    "1 6000",
    `cfn=(3) ${UNWRAP}`,
    "calls=1 0",
    "1 500",
    `cfn=(4) ${RESPONSE_NEW}`,
    "calls=1 0",
    "1 9000",
    "fn=(2)",
    "0 4500",
    "cfn=(5) workerd::api::Headers::get(workerd::jsg::Lock&, kj::String)",
    "calls=3 0",
    "0 1500",
    "fn=(5)",
    "0 1500",
    "fn=(3)",
    "0 500",
    "fn=(4)",
    "0 5000",
    `cfn=(6) ${RESPONSE_HEADERS}`,
    "calls=1 0",
    "0 2000",
    "cfn=(7) v8::internal::Heap::CollectGarbage(v8::internal::AllocationSpace)",
    "calls=1 0",
    "0 2000",
    "fn=(6)",
    "0 2000",
    "fn=(7)",
    "0 2000",
    "fn=(8) Builtins_CallApiCallback",
    "0 700",
  ],
  21_200,
);

describe("runtimeCalls", () => {
  it("counts each API member's calls from JavaScript, inclusive, once, with callgrind's call counts", () => {
    const calls = runtimeCalls(parseCallGraph(ROW));
    expect(calls).toEqual([
      { name: "Response.constructor", ir: 9000, calls: 1 },
      { name: "Headers.get", ir: 6000, calls: 3 },
    ]);
  });
});

describe("gapTable", () => {
  const base = itemize(parseCallGraph(ROW), 21_200, 1);
  // The other row: the same, plus two more Headers.get calls (4,000 Ir) and a new member, setTimeout.
  const more = dump(
    [
      "fn=(1) 0x00000000639e0800",
      "1 3000",
      `cfn=(2) ${HEADERS_GET}`,
      "calls=5 0",
      "1 10000",
      `cfn=(9) ${SUBTLE_SIGN}`,
      "calls=1 0",
      "1 25600",
      "fn=(2)",
      "0 10000",
      "fn=(9)",
      "0 25600",
    ],
    38_600,
  );
  const row = itemize(parseCallGraph(more), 38_600, 1);
  const table = gapTable(base, row, ["(c)", "(d)"]);

  it("lists each member with its calls and cost per call, largest difference first", () => {
    const lines = table.split("\n");
    expect(lines[2]).toBe("SubtleCrypto.sign | 0.0 k | 25.6 k | +25.6 k | 0 → 1 calls, 25.6 k each");
    expect(lines[3]).toBe("Response.constructor | 9.0 k | 0.0 k | −9.0 k | 1 → 0 calls");
    expect(lines[4]).toBe("Headers.get | 6.0 k | 10.0 k | +4.0 k | 3 → 5 calls, 2.0 k each");
  });

  // The collection under new Response (2,000) is in that call's 9,000 and in the GC line both: callgrind's edges
  // cannot split it out, so the rest (what no item holds) is a lower bound by that much, as runtime-calls.ts says.
  it("adds up to the whole difference: the rest is what no item holds", () => {
    const diffs = table
      .split("\n")
      .slice(2, -1)
      .map((l) => l.split(" | ")[3]!)
      .map((d) => Number(d.replace("−", "-").replace(" k", "")));
    const total = table.split("\n").at(-1)!.split(" | ")[3]!;
    expect(total).toBe("+17.4 k");
    expect(diffs.reduce((a, b) => a + b, 0)).toBeCloseTo(17.4, 5);
    expect(table).toContain("garbage collection | 2.0 k | 0.0 k | −2.0 k");
  });

  it("sums members closer than the threshold into one line", () => {
    const t = gapTable(base, row, ["(c)", "(d)"], 5_000);
    expect(t).toContain("1 other API members (each under 5.0 k apart) | 6.0 k | 10.0 k | +4.0 k");
  });
});

describe("medianRun", () => {
  it("picks the run with the median count per request, the lower middle one of an even count", () => {
    const run = (total: number) => ({ requests: 1000, total, calls: [], gc: 0, jit: 0, builtins: 0 });
    expect(medianRun([])).toBeUndefined();
    expect(medianRun([run(546_700), run(471_900), run(473_000)])!.total).toBe(473_000);
    expect(medianRun([run(546_700), run(471_900)])!.total).toBe(471_900);
  });
});

describe("interpreted", () => {
  it("tells a run whose JavaScript stayed in V8's interpreter from a compiled one and from a row with little JavaScript", () => {
    const run = (total: number, builtins: number, jit: number) => ({ requests: 1, total, calls: [], gc: 0, jit, builtins });
    expect(interpreted(run(546_700, 104_800, 1_100))).toBe(true);
    expect(interpreted(run(470_800, 15_800, 9_500))).toBe(false);
    expect(interpreted(run(338_200, 5_000, 100))).toBe(false);
  });
});
