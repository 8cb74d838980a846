// Which origin a trivial proxy sends each request to: BENCH_ORIGINS (comma-
// separated URLs) in turn, one request each, so that these rows reach the same
// node addresses as edgelb's round-robin rows (each socket request is a new TCP
// connection: one destination would take every connection's kernel work alone,
// review rv-bench s9 4); else the one BENCH_ORIGIN. Parsed once per isolate.
// Plain JS: bundled into the socket rows, which the node-side type check does not load.

/**
 * A picker for `env`: each call gives the next origin: `host` (Host field form), `hostname` (connect()'s,
 * IPv6 in brackets), `address` (without them, as the transport's Origin), `port`, `name`.
 */
export function originPicker(env) {
  const list = (env.BENCH_ORIGINS ?? env.BENCH_ORIGIN ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (list.length === 0) throw new Error("BENCH_ORIGINS or BENCH_ORIGIN must name at least one origin");
  const origins = list.map((s, i) => {
    const url = new URL(s);
    const address = url.hostname.replace(/^\[(.*)\]$/, "$1");
    return { host: url.host, hostname: url.hostname, address, port: Number(url.port), name: `node-${i + 1}` };
  });
  let next = 0;
  return () => {
    const o = origins[next];
    next = next + 1 === origins.length ? 0 : next + 1;
    return o;
  };
}
