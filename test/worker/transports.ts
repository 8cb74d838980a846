// The transports the failover, streaming and header suites run over.
export const TRANSPORTS = ["fetch"] as const satisfies readonly ("fetch" | "socket")[];
