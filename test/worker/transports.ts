// The transports the failover, streaming and header suites run over.
export const TRANSPORTS = ["fetch", "socket"] as const satisfies readonly ("fetch" | "socket")[];
