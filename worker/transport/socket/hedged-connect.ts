// Happy Eyeballs across a Service's nodes (RFC 8305 §5, "Connection Attempt
// Delay"): when the connect to the chosen node has not opened within the
// hedge's delay, a connect to a second node starts beside it, and the request
// goes over whichever opens first. The loser is closed once it opens (or fails
// on its own), and its outcome still reaches the proxy's outlier detection
// through hedge.settled.
// - openHedged (any method with a body, POST, PATCH, PUT, DELETE): nothing is
//   written before a connection opens, so the request runs on one node only.
// - startHedged (bodyless GET, HEAD, OPTIONS only: safe methods, RFC 9110
//   §9.2.1): each attempt is a started request (startRequest's fast start),
//   its head queued before the open. A loser that opens after the winner may
//   get the head before it is closed, so the request may reach two nodes;
//   the client's answer is read from the winner only.
import type { ConnectHedge, Origin } from "../types.ts";
import { ConnectError } from "../types.ts";
import { type Connect, type Connection, openConnection, type StartedRequest, startRequest } from "./connection.ts";

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

/**
 * The fast start under a hedge, for bodyless requests with a safe method only
 * (see the header): the primary is started with its head queued; if it has not
 * opened within hedge.delayMs, the second node (hedge.next()) is started too,
 * with its own head from `headFor` (undefined: no second). Resolves with the
 * first to open (its response deadline already runs, read it with
 * readStartedHead); the other is closed when it opens, or fails on its own.
 * Every outcome is reported through hedge.settled as openHedged does, and the
 * caller sees the primary's ConnectError when none opened.
 */
export function startHedged(
  connect: Connect,
  primary: Origin,
  head: Uint8Array,
  headFor: (origin: Origin) => Promise<Uint8Array | undefined>,
  connectTimeoutMs: number,
  responseTimeoutMs: number,
  hedge: ConnectHedge,
): Promise<StartedRequest> {
  return new Promise<StartedRequest>((resolve, reject) => {
    let won = false;
    let pending = 0;
    let primaryFailure: { error: ConnectError; ms: number } | undefined;
    const giveUp = () => {
      if (won || pending > 0 || primaryFailure === undefined) return;
      // Every attempt failed: the caller sees the first node's error, as without a hedge.
      hedge.settled(primary, { ...primaryFailure, used: true });
      reject(primaryFailure.error);
    };
    const attempt = (origin: Origin, h: Uint8Array, isPrimary: boolean): Promise<void> => {
      pending++;
      const startedAt = Date.now();
      let conn: StartedRequest | undefined;
      let outcome: Promise<ConnectError | undefined>;
      try {
        // The primary's slow point rides on its own deadline timer (no second timer per request).
        conn = startRequest(connect, origin, h, connectTimeoutMs, responseTimeoutMs, isPrimary ? { afterMs: hedge.delayMs, onSlow: startSecond } : undefined);
        // Waits for the open: undefined once open, the ConnectError when refused or timed out.
        outcome = conn.connectFailure();
      } catch (e) {
        outcome = Promise.resolve(e instanceof ConnectError ? e : new ConnectError(String(e), origin, { cause: e }));
      }
      return outcome.then((error) => {
        pending--;
        const ms = Date.now() - startedAt;
        if (error === undefined) {
          if (won) {
            // Opened too late: closed, its answer (if any) is never read.
            conn!.close();
            hedge.settled(origin, { ms, used: false });
            return;
          }
          won = true;
          if (primaryFailure) hedge.settled(primary, { ...primaryFailure, used: false });
          hedge.settled(origin, { ms, used: true });
          resolve(conn!);
          return;
        }
        conn?.close();
        // A failed attempt's timer (the slow point or the connect deadline) has nothing left to do.
        conn?.deadline.clear();
        if (won) {
          hedge.settled(origin, { ms, error, used: false });
          return;
        }
        if (isPrimary) primaryFailure = { error, ms };
        else {
          hedge.settled(origin, { ms, error, used: false });
          // The first node's own error is the one thrown, if it failed too.
          if (primaryFailure === undefined) return;
        }
        giveUp();
      });
    };
    let secondStarted = false;
    function startSecond(): void {
      if (secondStarted || won || primaryFailure !== undefined) return;
      secondStarted = true;
      // The losing attempt settles after the winner answered: the request's context stays alive for it.
      hedge.keepAlive(first);
      const second = hedge.next();
      if (second === undefined) return;
      // Held pending while its head is made: the primary's failure waits for it.
      pending++;
      const started = headFor(second)
        .catch(() => undefined)
        .then((secondHead) => {
          pending--;
          // No head for it (it cannot be written safely), or the primary opened meanwhile: no second.
          if (secondHead === undefined || won) return giveUp();
          return attempt(second, secondHead, false);
        });
      hedge.keepAlive(started);
    }
    const first = attempt(primary, head, true);
  });
}
