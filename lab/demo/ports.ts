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
