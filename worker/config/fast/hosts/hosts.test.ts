// Which unknown hostnames may start the fast path's check (rv-proxy s6 3): only names next to a served one.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { domainOf, isPublicSuffixLike, mayBeNewHost, servedDomains } from "./index.ts";

describe("unknown hostnames that may be a new Service's", () => {
  const domains = servedDomains(["www.example.com", "shop.example.org", "example.io", "api.eu.example.dev"], ["apps.example.net"]);

  it("siblings of a served name, its apex, names under a served apex and a wildcard's suffix count; made-up names elsewhere do not", () => {
    for (const host of ["new.example.com", "example.com", "cart.example.org", "www.example.io", "eu.example.dev", "v2.eu.example.dev", "apps.example.net"]) {
      expect(mayBeNewHost(domains, host), host).toBe(true);
    }
    for (const host of ["nobody.example.net", "x.y.example.com", "a.b.example.io", "example.dev", "com", "", "x.apps.example.net.evil", "www.example.com.evil.test", "localhost"]) {
      expect(mayBeNewHost(domains, host), host).toBe(false);
    }
  });

  it("an apex under a two-label public suffix (example.co.uk) has its new names count, and does not make every *.co.uk name count (rv-ops s7 2)", () => {
    const uk = servedDomains(["example.co.uk", "www.shop.com.au"], []);
    expect(mayBeNewHost(uk, "api.example.co.uk")).toBe(true);
    expect(mayBeNewHost(uk, "other-tenant.co.uk")).toBe(false);
    expect(mayBeNewHost(uk, "cart.shop.com.au")).toBe(true);
    expect(mayBeNewHost(uk, "shop.com.au")).toBe(true);
    expect(mayBeNewHost(uk, "other.com.au")).toBe(false);
    for (const s of ["co.uk", "com.au", "co.jp", "com.br", "org.nz"]) expect(isPublicSuffixLike(s), s).toBe(true);
    for (const s of ["example.com", "co.example.uk", "eu.example.com", "com"]) expect(isPublicSuffixLike(s), s).toBe(false);
  });

  it("the sibling of an apex under a two-letter public suffix (a.or.a0) is another tenant's name, not a candidate (CI s8 counterexample)", () => {
    const d = servedDomains(["a.or.a0"], []);
    expect(mayBeNewHost(d, "a.or.a0")).toBe(true);
    expect(mayBeNewHost(d, "zz-new.or.a0")).toBe(false);
    expect(mayBeNewHost(d, "api.a.or.a0")).toBe(true);
  });

  it("a top-level label is never a domain: a served apex does not make every name under its TLD count", () => {
    expect(domainOf("example.io")).toBe("example.io");
    expect(mayBeNewHost(domains, "other.io")).toBe(false);
  });

  it("property: a name counts only when it, or it without its first label (two labels or more), is a served name, the domain of one (not a public suffix) or a wildcard's suffix", () => {
    // Public-suffix shapes (co.uk, org.au) come up often, not once in thousands of names.
    const label = fc.oneof(fc.stringMatching(/^[a-z0-9]{1,6}$/), fc.constantFrom("co", "com", "org", "or", "uk", "au", "a0"));
    const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join("."));
    fc.assert(
      fc.property(fc.array(name, { maxLength: 6 }), fc.array(name, { maxLength: 3 }), name, (exact, wild, host) => {
        const d = servedDomains(exact, wild);
        const related = (h: string) => {
          const rest = h.slice(h.indexOf(".") + 1);
          const parent = h.includes(".") && rest.includes(".") ? rest : undefined;
          return [h, parent].some((n) => n !== undefined && (wild.includes(n) || exact.includes(n) || exact.some((e) => domainOf(e) === n && !isPublicSuffixLike(n))));
        };
        expect(mayBeNewHost(d, host)).toBe(related(host));
        for (const e of exact) {
          if (e.split(".").length < 3) continue;
          const parentOfE = e.slice(e.indexOf(".") + 1);
          const sibling = `zz-new.${parentOfE}`;
          expect(mayBeNewHost(d, sibling), sibling).toBe(related(sibling));
          // A served name's sibling counts (the case the check is for), unless the parent is a public
          // suffix by its shape: then the sibling of `example.co.uk` is another tenant's `zz-new.co.uk`.
          if (!isPublicSuffixLike(parentOfE)) expect(mayBeNewHost(d, sibling), sibling).toBe(true);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
