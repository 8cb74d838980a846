// Which hostnames no route serves may still be a new Service's (pure). A request for such a
// hostname starts the fast path's check (at most once a minute per location), so that a Service
// created a moment ago is served within seconds everywhere. Anyone can send requests for made-up
// names, and each check is a Durable Object request of the day's budget: only names next to a
// served one count. A new Service's hostname is nearly always a sibling of one already served
// (`api.example.com` next to `www.example.com`); a made-up `x.y.example.com` or a name under
// another zone routed to the worker is not.
//
// Why the parent and not the registrable domain (eTLD+1): the narrower rule needs no public suffix
// list in the worker (~100 KB that changes monthly) and leaves strangers fewer names that start a
// check: with the registrable domain every `*.*.example.com` would. The cost is a name two labels
// below a served one (`a.eu.example.com` next to only `www.example.com`): it arrives through KV
// (about two minutes) instead of seconds.

/**
 * A hostname's domain: the name without its first label, when that still has two labels or more
 * (`www.example.com` → `example.com`); else the name itself (`example.com` → `example.com`: a TLD
 * is never a domain of its own here).
 */
export function domainOf(host: string): string {
  const dot = host.indexOf(".");
  if (dot === -1) return host;
  const parent = host.slice(dot + 1);
  return parent.includes(".") ? parent : host;
}

/**
 * The domains under which an unknown hostname may be new: each served exact name's domain, and
 * each served wildcard's suffix (`*.example.com` → `example.com`). Built when the routes change,
 * never per request.
 */
export function servedDomains(exact: Iterable<string>, wildcardSuffixes: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const host of exact) out.add(domainOf(host));
  for (const suffix of wildcardSuffixes) out.add(suffix);
  return out;
}

/**
 * May a hostname no route serves be a new Service's? When its domain is a served domain (a
 * sibling: `new.example.com` next to `www.example.com`, or a child of a served apex), or it is
 * one itself (the apex `example.com` next to `www.example.com`). `host` is normalized (lower case,
 * no port, no trailing dot).
 */
export function mayBeNewHost(domains: ReadonlySet<string>, host: string): boolean {
  return host.length > 0 && (domains.has(domainOf(host)) || domains.has(host));
}
