// The capnp text config of one plain-workerd bench row: the bundled worker as
// the only socket's service, its vars as text bindings, optionally a KV
// namespace served by the in-config memory KV worker, and a network service
// that lets fetch() and connect() reach loopback origins (workerd's default
// "internet" service allows public addresses only). Pure: tested on its own.

export interface WorkerdConfigInput {
  /** File name of the bundled worker module, beside the config file. */
  module: string;
  compatibilityDate: string;
  compatibilityFlags: readonly string[];
  /** Text bindings (wrangler's [vars] and secrets). */
  vars: Readonly<Record<string, string>>;
  /** A KV namespace binding backed by `kvModule` (in memory). */
  kv?: { binding: string; module: string };
  /** address:port to listen on; port 0 lets the kernel pick (reported on the control fd). */
  listen: string;
  /** V8 flags (the config's v8Flags), e.g. bench/instructions.ts's; none by default. */
  v8Flags?: readonly string[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A capnp text literal. capnp has no \u escape, so printable non-ASCII stays
 * as UTF-8; control characters become \xNN; quote and backslash are escaped.
 */
export function capnpText(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

function ident(kind: string, name: string): string {
  if (!IDENT.test(name)) throw new Error(`workerd config: ${kind} "${name}" is not an identifier`);
  return name;
}

export function renderConfig(c: WorkerdConfigInput): string {
  const bindings = Object.entries(c.vars).map(([k, v]) => `    (name = ${capnpText(ident("binding", k))}, text = ${capnpText(v)}),`);
  if (c.kv) bindings.push(`    (name = ${capnpText(ident("binding", c.kv.binding))}, kvNamespace = "kv"),`);
  const services = [
    `    (name = "main", worker = .mainWorker),`,
    ...(c.kv ? [`    (name = "kv", worker = .kvWorker),`] : []),
    // Loopback origins are "local"; simulated node addresses may be private.
    `    (name = "internet", network = (allow = ["public", "private", "local"])),`,
  ];
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
${services.join("\n")}
  ],
  sockets = [(name = "http", address = ${capnpText(c.listen)}, http = (), service = "main")],${c.v8Flags?.length ? `\n  v8Flags = [${c.v8Flags.map(capnpText).join(", ")}],` : ""}
);

const mainWorker :Workerd.Worker = (
  modules = [(name = ${capnpText(c.module)}, esModule = embed ${capnpText(c.module)})],
  compatibilityDate = ${capnpText(c.compatibilityDate)},
  compatibilityFlags = [${c.compatibilityFlags.map(capnpText).join(", ")}],
  bindings = [
${bindings.join("\n")}
  ],
);
${
  c.kv
    ? `
const kvWorker :Workerd.Worker = (
  modules = [(name = ${capnpText(c.kv.module)}, esModule = embed ${capnpText(c.kv.module)})],
  compatibilityDate = ${capnpText(c.compatibilityDate)},
);
`
    : ""
}`;
}
