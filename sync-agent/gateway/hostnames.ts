// Hostname intersection between an HTTPRoute and a Gateway listener, as the
// Gateway API spec defines it (HTTPRouteSpec.hostnames): a wildcard `*.x`
// matches any name with at least one more label in front of `x`; where both
// sides match, the more specific of the two is the effective hostname.

/** Does wildcard `*.suffix` cover `name` (an exact name or another wildcard)? */
function covers(wildcard: string, name: string): boolean {
  const suffix = wildcard.slice(1); // ".example.com"
  const bare = name.startsWith("*.") ? name.slice(1) : name;
  return bare.endsWith(suffix) && (name.startsWith("*.") ? bare.length >= suffix.length : bare.length > suffix.length);
}

/** The effective hostname of a route hostname under a listener hostname, or undefined when they do not intersect. */
export function intersectHostname(listener: string, route: string): string | undefined {
  const lw = listener.startsWith("*.");
  const rw = route.startsWith("*.");
  if (!lw && !rw) return listener === route ? route : undefined;
  if (lw && !rw) return covers(listener, route) ? route : undefined;
  if (!lw && rw) return covers(route, listener) ? listener : undefined;
  // Both wildcards: the longer (more specific) one, if the shorter covers it.
  if (covers(listener, route)) return route;
  if (covers(route, listener)) return listener;
  return undefined;
}

/**
 * A route's effective hostnames on a listener: the route's intersected with
 * the listener's; either side absent means "no restriction"; both absent is
 * `*` (any host). An empty result means the route does not attach there.
 */
export function effectiveHostnames(listener: string | undefined, route: readonly string[]): string[] {
  if (!listener) return route.length > 0 ? [...new Set(route)] : ["*"];
  if (route.length === 0) return [listener];
  const out = new Set<string>();
  for (const h of route) {
    const e = intersectHostname(listener, h);
    if (e !== undefined) out.add(e);
  }
  return [...out];
}
