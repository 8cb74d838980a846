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
// below a served one (`a.eu.example.com` next to only `www.example.com`), or the first name under a
// domain no served name uses yet: it arrives through KV (about two minutes) instead of seconds.
// Without the list, a parent such as `co.uk` is told by its shape (SECOND_LEVEL below): a served
// `example.co.uk` makes `api.example.co.uk` a candidate, never every `*.co.uk`.

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
 * Second-level labels that registries sell names under, below a two-letter country code
 * (`co.uk`, `com.au`, `co.jp`, `com.br`, `org.nz`, …): such a parent is a public suffix, not a
 * domain of the operator's. A short list instead of the public suffix list.
 */
const SECOND_LEVEL = new Set(["ac", "co", "com", "edu", "go", "gob", "gov", "govt", "ltd", "me", "mil", "ne", "net", "nom", "or", "org", "plc", "sch"]);

/** Is this two-label name a public suffix by its shape (`co.uk`, `com.au`)? */
export function isPublicSuffixLike(name: string): boolean {
  const dot = name.indexOf(".");
  return dot !== -1 && name.length - dot - 1 === 2 && name.indexOf(".", dot + 1) === -1 && SECOND_LEVEL.has(name.slice(0, dot));
}

/**
 * The domains under which an unknown hostname may be new: each served exact name and its domain
 * (unless that is a public suffix such as `co.uk`), and each served wildcard's suffix
 * (`*.example.com` → `example.com`). Built when the routes change, never per request.
 */
export function servedDomains(exact: Iterable<string>, wildcardSuffixes: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const host of exact) {
    out.add(host);
    const domain = domainOf(host);
    if (!isPublicSuffixLike(domain)) out.add(domain);
  }
  for (const suffix of wildcardSuffixes) out.add(suffix);
  return out;
}

/**
 * May a hostname no route serves be a new Service's? When its domain is a served domain (a
 * sibling: `new.example.com` next to `www.example.com`, or a child of a served name such as the
 * apex `example.co.uk`), or it is one itself (the apex `example.com` next to `www.example.com`). `host` is normalized (lower case,
 * no port, no trailing dot).
 */
export function mayBeNewHost(domains: ReadonlySet<string>, host: string): boolean {
  return host.length > 0 && (domains.has(domainOf(host)) || domains.has(host));
}
