// Port checks and the errors `npm start` turns into one line on stderr. Kept
// free of heavy imports so a busy port is reported before anything loads.
import net from "node:net";

/** A listener that cannot start because its address is taken; the message names it. */
export class PortInUseError extends Error {
  override name = "PortInUseError";
  constructor(
    readonly address: string,
    readonly port: number,
    readonly role: string,
    readonly hint: string,
  ) {
    super(`${address}:${port} is already in use (${role}). ${hint}`);
  }
}

/** A problem the user can fix (bad kubeconfig, unreachable API server, …): one message, no stack. */
export class DemoError extends Error {
  override name = "DemoError";
}

/** Fails with PortInUseError when host:port cannot be bound (0 always passes). */
export async function assertPortFree(host: string, port: number, role: string, hint: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE" || err.code === "EACCES") reject(new PortInUseError(host, port, role, hint));
      else if (err.code === "EADDRNOTAVAIL") reject(new DemoError(`cannot listen on ${host}:${port} (${role}): no such local address`));
      else reject(err);
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

/**
 * The error a user can act on when the simulated cluster cannot listen:
 * which port, whose, and what to change. On a shared machine the usual
 * holder of the nodes' addresses is another `npm start`, so a different
 * --address-base comes first.
 */
export function clusterListenError(err: unknown, ports: { healthzPort: number; apiPort?: number }): unknown {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e.code === "EADDRINUSE") {
    const role =
      e.port === ports.healthzPort
        ? "kube-proxy's healthz port on a simulated node: another npm start on these addresses, or a real kube-proxy"
        : e.port === ports.apiPort
          ? "the simulated API server"
          : "a simulated node";
    const hint =
      e.port === ports.healthzPort
        ? "Pick other node addresses: npm start -- --address-base 127.0.1, or another port: --healthz-port 10257"
        : "Stop what uses it, or pick other addresses: npm start -- --address-base 127.0.1";
    return new PortInUseError(e.address ?? "?", e.port ?? 0, role, hint);
  }
  if (e.code === "EADDRNOTAVAIL") {
    return new DemoError(
      `cannot listen on ${e.address ?? "a loopback address"}: the simulated nodes need 127.0.0.11–13 (Linux has all of 127.0.0.0/8; on macOS add them: sudo ifconfig lo0 alias 127.0.0.11 up, …)`,
    );
  }
  return err;
}
