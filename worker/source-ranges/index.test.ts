import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allowedBy, cidrContains, compileRanges, enforceSourceRanges, formatCidr, parseCidr, parseIP } from "./index.ts";

// A reference model: addresses as bigints, ranges as (base, bits).
function toBig(bytes: Uint8Array | number[]): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}
function refContains(rangeBytes: number[], bits: number, ipBytes: number[]): boolean {
  if (rangeBytes.length !== ipBytes.length) return false;
  const width = BigInt(rangeBytes.length * 8);
  const shift = width - BigInt(bits);
  return toBig(rangeBytes) >> shift === toBig(ipBytes) >> shift;
}
function v6Text(bytes: number[]): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return g.join(":");
}

const v4 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 });
const v6 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 16 }).filter((b) => !(b.slice(0, 10).every((x) => x === 0) && b[10] === 255 && b[11] === 255));

describe("CIDR parsing and matching", () => {
  it("IPv4: matching agrees with a bigint reference, host bits are masked", () => {
    fc.assert(
      fc.property(v4, fc.integer({ min: 0, max: 32 }), v4, (base, bits, ip) => {
        const range = parseCidr(`${base.join(".")}/${bits}`)!;
        expect(range).not.toBeNull();
        expect(cidrContains(range, parseIP(ip.join("."))!)).toBe(refContains(base, bits, ip));
        // The base address itself is always inside its range.
        expect(cidrContains(range, parseIP(base.join("."))!)).toBe(true);
      }),
    );
  });

  it("IPv6: matching agrees with a bigint reference, and formatting round-trips", () => {
    fc.assert(
      fc.property(v6, fc.integer({ min: 0, max: 128 }), v6, (base, bits, ip) => {
        const range = parseCidr(`${v6Text(base)}/${bits}`)!;
        expect(cidrContains(range, parseIP(v6Text(ip))!)).toBe(refContains(base, bits, ip));
        const again = parseCidr(formatCidr(range))!;
        expect(formatCidr(again)).toBe(formatCidr(range));
        expect([...again.bytes]).toEqual([...range.bytes]);
      }),
    );
  });

  it("never matches across families; IPv4-mapped IPv6 clients are IPv4", () => {
    expect(allowedBy(compileRanges(["0.0.0.0/0"]), "2001:db8::1")).toBe(false);
    expect(allowedBy(compileRanges(["::/0"]), "192.0.2.1")).toBe(false);
    expect(allowedBy(compileRanges(["192.0.2.0/24"]), "::ffff:192.0.2.7")).toBe(true);
    expect(allowedBy(compileRanges(["2001:db8::/32"]), "2001:DB8:0:0:0:0:0:1")).toBe(true);
  });

  it("refuses what Kubernetes refuses and never throws on garbage", () => {
    for (const bad of ["10.0.0.0", "10.0.0.0/33", "010.0.0.0/8", "10.0.0/8", "1.2.3.4/-1", "::/129", "1:::2/64", "a::b::c/64", "", "/8", "1.2.3.4/08x", "fe80::1%eth0/64"]) {
      expect(parseCidr(bad), bad).toBeNull();
    }
    fc.assert(
      fc.property(fc.string(), (s) => {
        const r = parseCidr(s);
        if (r) expect(r.bits).toBeLessThanOrEqual(r.bytes.length * 8);
        parseIP(s);
      }),
    );
    expect(formatCidr(parseCidr("10.1.2.3/8")!)).toBe("10.0.0.0/8");
    expect(formatCidr(parseCidr("2001:db8:0:0:1::/48")!)).toBe("2001:db8::/48");
  });

  it("enforcement: 403 naming the client unless every restricting Service allows it; no client address is refused", async () => {
    const req = (ip?: string) => new Request("https://x.example.com/", ip ? { headers: { "cf-connecting-ip": ip } } : {});
    const office = compileRanges(["203.0.113.0/24", "2001:db8:1::/48"]);
    expect(enforceSourceRanges(undefined, req("198.51.100.1"))).toBeNull();
    expect(enforceSourceRanges([office], req("203.0.113.9"))).toBeNull();
    expect(enforceSourceRanges([office], req("2001:db8:1:ffff::1"))).toBeNull();
    const denied = enforceSourceRanges([office], req("198.51.100.1"))!;
    expect(denied.status).toBe(403);
    expect(await denied.text()).toContain("198.51.100.1 is not allowed");
    expect(enforceSourceRanges([office], req())!.status).toBe(403);
    expect(enforceSourceRanges([office, compileRanges(["10.0.0.0/8"])], req("203.0.113.9"))!.status).toBe(403);
  });
});
