// `--import` hook for the routing child: lets Node load worker modules that
// import `cloudflare:sockets` (the socket transport) by resolving it to a
// stub. The bench never opens a socket through it; it uses a stub transport.
import { register } from "node:module";

const stub = "export function connect() { throw new Error('cloudflare:sockets is not available in the routing bench'); }";
const hooks = `
export async function resolve(specifier, context, next) {
  if (specifier === "cloudflare:sockets") return { url: "data:text/javascript," + encodeURIComponent(${JSON.stringify(stub)}), shortCircuit: true };
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
