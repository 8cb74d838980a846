// loadBalancerSourceRanges at the edge: which client addresses may reach a
// Service. Pure: parse IP addresses and CIDRs into bytes, match by prefix.
// The agent uses the same parser to validate ranges (and to classify node
// addresses), so what the agent accepts is exactly what the worker enforces.

/** An address as 4 (IPv4) or 16 (IPv6) bytes. IPv4-mapped IPv6 is IPv4. */
export interface IP {
  bytes: Uint8Array;
}

export interface Cidr {
  bytes: Uint8Array;
  bits: number;
}

const V4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseV4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!V4_PART.test(parts[i]!)) return null; // no leading zeros: "010" is octal to some parsers
    out[i] = Number(parts[i]);
  }
  return out;
}

function parseV6(s: string): Uint8Array | null {
  if (s.length < 2 || s.length > 45) return null;
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!;
      if (i === items.length - 1 && g.includes(".")) {
        const v4 = parseV4(g);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  // An embedded IPv4 may only end the address.
  if (halves.length === 2 && halves[0]!.includes(".")) return null;
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return null;
  const all = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i]! >> 8;
    out[2 * i + 1] = all[i]! & 0xff;
  }
  return out;
}

function isMappedV4(b: Uint8Array): boolean {
  if (b.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Parses an IPv4 or IPv6 literal (no zone, no brackets); null when it is not one. */
export function parseIP(text: string): IP | null {
  const s = text.trim();
  const bytes = s.includes(":") ? parseV6(s) : parseV4(s);
  if (!bytes) return null;
  return { bytes: isMappedV4(bytes) ? bytes.slice(12) : bytes };
}

/** Parses "a.b.c.d/n" or "x::/n"; host bits are masked off, as Go's net.ParseCIDR (which Kubernetes uses) does. */
export function parseCidr(text: string): Cidr | null {
  const s = text.trim();
  const slash = s.indexOf("/");
  if (slash < 0) return null;
  const addr = s.slice(0, slash);
  const len = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(len)) return null;
  const bytes = addr.includes(":") ? parseV6(addr) : parseV4(addr);
  if (!bytes) return null;
  let bits = Number(len);
  if (bits > bytes.length * 8) return null;
  // "::ffff:10.0.0.0/104" is the IPv4 range 10.0.0.0/8.
  let b = bytes;
  if (isMappedV4(bytes) && bits >= 96) {
    b = bytes.slice(12);
    bits -= 96;
  }
  return { bytes: mask(b, bits), bits };
}

function mask(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    out[i] = bytes[i]! & (0xff << (8 - keep));
  }
  return out;
}

/** Is the address inside the range? Families never match each other. */
export function cidrContains(range: Cidr, ip: IP): boolean {
  if (range.bytes.length !== ip.bytes.length) return false;
  const full = range.bits >> 3;
  for (let i = 0; i < full; i++) if (range.bytes[i] !== ip.bytes[i]) return false;
  const rest = range.bits & 7;
  if (rest === 0) return true;
  const m = (0xff << (8 - rest)) & 0xff;
  return (ip.bytes[full]! & m) === range.bytes[full];
}

/** The canonical text of a range ("10.0.0.0/8", "2001:db8::/32"). */
export function formatCidr(c: Cidr): string {
  if (c.bytes.length === 4) return `${[...c.bytes].join(".")}/${c.bits}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((c.bytes[i]! << 8) | c.bytes[i + 1]!).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const text = best < 0 ? groups.join(":") : `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
  return `${text}/${c.bits}`;
}

/** Ranges ready for matching; built once per snapshot, not per request. */
export type CompiledRanges = readonly Cidr[];

const compiled = new WeakMap<readonly string[], CompiledRanges>();

/** Compiles the snapshot's (already validated) ranges; unparsable entries match nothing. */
export function compileRanges(ranges: readonly string[]): CompiledRanges {
  let c = compiled.get(ranges);
  if (!c) {
    c = ranges.map(parseCidr).filter((r): r is Cidr => r !== null);
    compiled.set(ranges, c);
  }
  return c;
}

/** May a client at `clientIP` reach a Service with these ranges? No address (or a bad one) never may. */
export function allowedBy(ranges: CompiledRanges, clientIP: string | null | undefined): boolean {
  if (!clientIP) return false;
  const ip = parseIP(clientIP);
  if (!ip) return false;
  for (const r of ranges) if (cidrContains(r, ip)) return true;
  return false;
}

/** May this request's client reach every Service behind a route with these range lists (no lists: anyone may)? */
export function sourcesAllow(rangeLists: readonly CompiledRanges[] | undefined, request: Request): boolean {
  if (!rangeLists || rangeLists.length === 0) return true;
  const client = request.headers.get("cf-connecting-ip");
  for (const ranges of rangeLists) if (!allowedBy(ranges, client)) return false;
  return true;
}

/**
 * The edge's check before any origin connection: every Service behind the
 * route that restricts sources must allow the client (a hostname merged from
 * several Services is as closed as the strictest). Null = allowed, else the 403.
 */
export function enforceSourceRanges(rangeLists: readonly CompiledRanges[] | undefined, request: Request): Response | null {
  if (!rangeLists || rangeLists.length === 0) return null;
  // CF-Connecting-IP is set by Cloudflare's edge and cannot be forged by the client.
  const client = request.headers.get("cf-connecting-ip");
  for (const ranges of rangeLists) {
    if (!allowedBy(ranges, client)) {
      return new Response(`edgelb: client address ${client ?? "(unknown)"} is not allowed by this Service's loadBalancerSourceRanges\n`, {
        status: 403,
        headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
      });
    }
  }
  return null;
}
