// Happy Eyeballs across a Service's nodes (RFC 8305 §5, "Connection Attempt
// Delay"): when the connect to the chosen node has not opened within the
// hedge's delay, a connect to a second node starts beside it, and the request
// goes over whichever opens first. Nothing is written before a connection
// opens, so this is safe for every method: the loser is closed unused (or
// fails on its own), and its outcome still reaches the proxy's outlier
// detection through hedge.settled.
import type { ConnectHedge, Origin } from "../types.ts";
import { ConnectError } from "../types.ts";
import { type Connect, type Connection, openConnection } from "./connection.ts";

export function openHedged(connect: Connect, primary: Origin, timeoutMs: number, hedge: ConnectHedge): Promise<Connection> {
  return new Promise<Connection>((resolve, reject) => {
    let won = false;
    let pending = 0;
    // The primary's failure is held back while the hedge may still win: then it only lost.
    let primaryFailure: { error: ConnectError; ms: number } | undefined;
    const attempt = (origin: Origin, isPrimary: boolean): Promise<void> => {
      pending++;
      const startedAt = Date.now();
      const slow = isPrimary ? { afterMs: hedge.delayMs, onSlow: startSecond } : undefined;
      return openConnection(connect, origin, timeoutMs, slow).then(
        (conn) => {
          pending--;
          const ms = Date.now() - startedAt;
          if (won) {
            conn.close();
            hedge.settled(origin, { ms, used: false });
            return;
          }
          won = true;
          if (primaryFailure) hedge.settled(primary, { ...primaryFailure, used: false });
          hedge.settled(origin, { ms, used: true });
          resolve(conn);
        },
        (e: unknown) => {
          pending--;
          const ms = Date.now() - startedAt;
          const error = e instanceof ConnectError ? e : new ConnectError(String(e), origin, { cause: e });
          if (won) {
            hedge.settled(origin, { ms, error, used: false });
            return;
          }
          if (isPrimary) primaryFailure = { error, ms };
          else hedge.settled(origin, { ms, error, used: false });
          if (pending > 0) return;
          // Every attempt failed: the caller sees the first node's error, as without a hedge.
          const failure = primaryFailure ?? { error, ms };
          hedge.settled(primary, { ...failure, used: true });
          reject(failure.error);
        },
      );
    };
    let secondStarted = false;
    function startSecond(): void {
      if (secondStarted || won) return;
      secondStarted = true;
      // Whichever loses settles after the winner answered: the request's context stays alive for it
      // (a connect timeout must still eject its node). Only slow connects get here: no cost otherwise.
      hedge.keepAlive(first);
      const second = hedge.next();
      if (second === undefined) return;
      hedge.keepAlive(attempt(second, false));
    }
    const first = attempt(primary, true);
  });
}
