// The fast path in the multi-location simulation. In production one
// Durable Object serves every location; plain workerd keeps a namespace's
// objects inside one process. So the real EdgelbGenerations class runs in one
// extra workerd (the object's "home", behind a small router), and every
// location's EDGELB_GENERATIONS binding is a forwarding class with the same
// methods that calls the home over loopback. The worker's code is unchanged:
// it calls the methods on a stub, as in production (a held check is a POST
// the router answers when the object does).
//
// A location's fast path can be cut at the router (POST /__cut): its calls,
// held ones included, then fail as if the object were unreachable, and the
// location learns changes only from KV — the simulation's control location.
import { capnpText, type WorkerdConfigInput } from "../../bench/workerd/config.ts";
import { GENERATIONS_OBJECT } from "../../worker/generations/api.ts";

const CLASS = "EdgelbGenerations";
const METHODS = ["versions", "value", "publish", "heartbeat", "claimKvRefresh", "watch"];

export const ROUTER_JS = `// Calls the generations object's methods for the locations' forwarders.
const METHODS = ${JSON.stringify(METHODS)};
const cut = new Set();
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/__cut") {
      const { location, on } = await request.json();
      if (on) cut.add(String(location));
      else cut.delete(String(location));
      return Response.json({ cut: [...cut] });
    }
    const location = request.headers.get("x-location") ?? "";
    const refused = () => Response.json({ error: "location " + location + " is cut off from the object" }, { status: 503 });
    if (cut.has(location)) return refused();
    const { method, args } = await request.json();
    if (!METHODS.includes(method) || !Array.isArray(args)) return Response.json({ error: "no such method" }, { status: 400 });
    const stub = env.NS.get(env.NS.idFromName(${JSON.stringify(GENERATIONS_OBJECT)}));
    try {
      const result = (await stub[method](...args)) ?? null;
      // Cut while its check was held: the answer is lost, as over a broken path.
      if (cut.has(location)) return refused();
      return Response.json({ result });
    } catch (err) {
      return Response.json({ error: String(err && err.message || err) }, { status: 500 });
    }
  },
};
`;

export function forwarderJs(homeUrl: string, location: number): string {
  return `// The location's stand-in for the generations object: the same methods, answered by the home.
import { DurableObject } from "cloudflare:workers";
const HOME = ${JSON.stringify(homeUrl)};
async function call(method, args) {
  const res = await fetch(HOME, { method: "POST", headers: { "x-location": ${JSON.stringify(String(location))} }, body: JSON.stringify({ method, args }) });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || "generations home answered " + res.status);
  return body.result;
}
export class ${CLASS} extends DurableObject {
  versions() { return call("versions", []); }
  value(cluster) { return call("value", [cluster]); }
  publish(cluster, version, text) { return call("publish", [cluster, version, text]); }
  heartbeat(cluster, version, at) { return call("heartbeat", [cluster, version, at]); }
  claimKvRefresh(cluster, version, at, everyMs) { return call("claimKvRefresh", [cluster, version, at, everyMs]); }
  watch(known, holdMs, cause) { return call("watch", [known, holdMs, cause]); }
}
export default { fetch() { return new Response("forwarder", { status: 404 }); } };
`;
}

/** Cuts (or restores) one location's path to the object, at the home's router. */
export async function cutFastPath(homeUrl: string, location: number, on: boolean): Promise<void> {
  const res = await fetch(new URL("/__cut", homeUrl), { method: "POST", body: JSON.stringify({ location, on }) });
  if (!res.ok) throw new Error(`cutting location ${location}'s fast path: ${res.status}`);
}

const INTERNET = `    (name = "internet", network = (allow = ["public", "private", "local"])),`;

function worker(name: string, c: WorkerdConfigInput, module: string, bindings: string[], extra = ""): string {
  return `const ${name} :Workerd.Worker = (
  modules = [(name = ${capnpText(module)}, esModule = embed ${capnpText(module)})],
  compatibilityDate = ${capnpText(c.compatibilityDate)},
  compatibilityFlags = [${c.compatibilityFlags.map(capnpText).join(", ")}],
  bindings = [
${bindings.join("\n")}
  ],${extra}
);
`;
}

const vars = (c: WorkerdConfigInput) => Object.entries(c.vars).map(([k, v]) => `    (name = ${capnpText(k)}, text = ${capnpText(v)}),`);
const OBJECTS = `
  durableObjectNamespaces = [(className = ${capnpText(CLASS)}, uniqueKey = "edgelb-generations", enableSql = true)],
  durableObjectStorage = (inMemory = void),`;

/** The home: the real worker module (exporting the class) with the namespace, and the router on the socket. */
export function renderHome(c: WorkerdConfigInput): string {
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .mainWorker),
    (name = "router", worker = .routerWorker),
${INTERNET}
  ],
  sockets = [(name = "http", address = ${capnpText(c.listen)}, http = (), service = "router")],
);

${worker("mainWorker", c, c.module, vars(c), OBJECTS)}
${worker("routerWorker", c, "router.js", [`    (name = "NS", durableObjectNamespace = (className = ${capnpText(CLASS)}, serviceName = "main")),`])}`;
}

/** A location: the worker, its KV service, and EDGELB_GENERATIONS bound to the forwarder. */
export function renderLocation(c: WorkerdConfigInput): string {
  if (!c.kv) throw new Error("a location needs its KV service");
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .mainWorker),
    (name = "kv", worker = .kvWorker),
    (name = "forwarder", worker = .forwarderWorker),
${INTERNET}
  ],
  sockets = [(name = "http", address = ${capnpText(c.listen)}, http = (), service = "main")],
);

${worker("mainWorker", c, c.module, [
  ...vars(c),
  `    (name = ${capnpText(c.kv.binding)}, kvNamespace = "kv"),`,
  `    (name = "EDGELB_GENERATIONS", durableObjectNamespace = (className = ${capnpText(CLASS)}, serviceName = "forwarder")),`,
])}
${worker("kvWorker", c, c.kv.module, [])}
${worker("forwarderWorker", c, "forwarder.js", [], OBJECTS.replace("edgelb-generations", "edgelb-generations-forwarder"))}`;
}
