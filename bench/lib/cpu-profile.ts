// Where a Node process spent its CPU, from a V8 .cpuprofile (node --cpu-prof): the busy time (idle
// and start-up excluded) in a few buckets an operator can act on. The gate bench cites it in what
// limits the gate, so the text follows the profile of the run rather than a sentence written once.

export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileShare {
  bucket: string;
  share: number;
}

/** Buckets, first match wins; tested against the sample's own frame and its callers. */
const BUCKETS: { bucket: string; frames: RegExp; depth?: number }[] = [
  { bucket: "start-up (module loading)", frames: /node:internal\/modules|esm\/|cjs\/loader|\/tsx\/|register-/ },
  { bucket: "signature check (HMAC, replay cache)", frames: /sync-agent\/gate\/(verify|replay)|Hmac/ },
  { bucket: "garbage collection", frames: /^\(garbage collector\)@/, depth: 1 },
  // A write on loopback runs the receiver's TCP stack in the sender's syscall: the hop's I/O.
  { bucket: "socket writes (syscalls)", frames: /^(writev|writeLatin1String|writeUtf8String|writeBuffer|writeAsciiString)@/, depth: 1 },
  // The gate's own HTTP/1.1 parsing: the request head, and the response's head and framing (the socket transport's parser).
  { bucket: "HTTP parsing (request head, response framing)", frames: /sync-agent\/gate\/request-head|worker\/transport\/socket\// },
  { bucket: "Node's HTTP server (edge side)", frames: /node:_http_server|node:_http_incoming/, depth: 6 },
  { bucket: "Node's HTTP client (NodePort side)", frames: /node:_http_client|node:_http_agent/, depth: 6 },
  { bucket: "connections and timers", frames: /node:net@|node:timers|^close@/, depth: 4 },
  { bucket: "the gate's own code", frames: /sync-agent\/gate\// },
];

/** Shares of the busy time per bucket, largest first ("other" last). Pure. */
export function profileBreakdown(p: CpuProfile): { busyMs: number; shares: ProfileShare[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stack = (id: number): string[] => {
    const out: string[] = [];
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const f = byId.get(x)!.callFrame;
      out.push(`${f.functionName}@${f.url}`);
    }
    return out;
  };
  const time = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    const t = p.timeDeltas[i] ?? 0;
    const name = byId.get(id)?.callFrame.functionName;
    if (name === undefined || name === "(idle)" || name === "(program)") continue;
    const frames = stack(id);
    const hit = BUCKETS.find((b) => frames.slice(0, b.depth ?? frames.length).some((f) => b.frames.test(f)));
    const bucket = hit?.bucket ?? "other";
    if (bucket === BUCKETS[0]!.bucket) continue;
    busy += t;
    time.set(bucket, (time.get(bucket) ?? 0) + t);
  }
  const shares = [...time]
    .map(([bucket, t]) => ({ bucket, share: busy ? t / busy : 0 }))
    .sort((a, b) => (a.bucket === "other" ? 1 : b.bucket === "other" ? -1 : b.share - a.share || a.bucket.localeCompare(b.bucket)));
  return { busyMs: busy / 1000, shares };
}

/** "31% socket writes (syscalls), 19% Node's HTTP server (edge side), …" Pure. */
export function describeBreakdown(shares: readonly ProfileShare[]): string {
  return shares
    .filter((s) => s.share >= 0.005)
    .map((s) => `${Math.round(s.share * 100)}% ${s.bucket}`)
    .join(", ");
}
