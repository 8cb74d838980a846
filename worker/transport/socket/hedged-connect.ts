// Happy Eyeballs across a Service's nodes (RFC 8305 §5, "Connection Attempt
// Delay"): when the connect to the chosen node has not opened within the
// hedge's delay, a connect to a second node starts beside it, and the request
// goes over whichever opens first. The loser is closed once it opens (or fails
// on its own), and its outcome still reaches the proxy's outlier detection
// through hedge.settled.
// - openHedged (any method with a body, POST, PATCH, PUT, DELETE): nothing is
//   written before a connection opens, so the request runs on one node only.
// - readHedgedHead (bodyless GET, HEAD, OPTIONS only: safe methods, RFC 9110
//   §9.2.1): each attempt is a started request (startRequest's fast start),
//   its head queued and its answer read before the open. A loser that opens after the winner may
//   get the head before it is closed, so the request may reach two nodes;
//   the client's answer is read from the winner only.
import type { ConnectHedge, Origin } from "../types.ts";
import { ConnectError } from "../types.ts";
import {
  type Connect,
  type Connection,
  type ConnectWatcher,
  type HeadResult,
  openConnection,
  readStartedHead,
  type SlowConnect,
  SUPERSEDED,
  type StartedRequest,
  startRequest,
} from "./connection.ts";
import { ResponseParser, type ResponseParserOptions } from "./response-parser.ts";

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

/** The winner's head, read as it came, with the parser that read it. */
export interface HedgedHead extends HeadResult {
  conn: StartedRequest;
  parser: ResponseParser;
}

/**
 * The fast start under a hedge, for bodyless requests with a safe method only
 * (see the header): the primary is started with its head queued and its answer
 * awaited at once, exactly as without a hedge (no wait for the open, no promise
 * of the race's own on the way). If it has not opened within hedge.delayMs, the
 * second node (hedge.next()) is started too, with its own head from `headFor`
 * (undefined: no second). The first to open wins: when it is the second, the
 * primary's read is ended (supersede()) and the second's answer read instead.
 * The loser is closed when it opens, or fails on its own; its answer is never
 * read. Every outcome is reported through hedge.settled as openHedged does, and
 * the caller sees the primary's ConnectError when none opened.
 */
export async function readHedgedHead(
  connect: Connect,
  primary: Origin,
  head: Uint8Array,
  headFor: (origin: Origin) => Promise<Uint8Array | undefined>,
  connectTimeoutMs: number,
  responseTimeoutMs: number,
  hedge: ConnectHedge,
  parser: ResponseParser,
  parserOptions: ResponseParserOptions,
): Promise<HedgedHead> {
  const race = new HedgeRace(connect, headFor, connectTimeoutMs, responseTimeoutMs, hedge);
  const first = race.start(primary, head);
  try {
    const r = await readStartedHead(first, parser);
    race.answered(first);
    return { conn: first, parser, head: r.head, pending: r.pending };
  } catch (e) {
    // The second opened first (this read was ended), or the primary never opened: the second may answer.
    const second = await race.instead(first, e);
    const p = new ResponseParser(parserOptions);
    const r = await readStartedHead(second, p);
    return { conn: second, parser: p, head: r.head, pending: r.pending };
  }
}

/**
 * One hedged request's race. Per request it is this object: the slow point
 * rides on the primary's own deadline timer (afterMs, onSlow), the opens are
 * told by the connections (ConnectWatcher), and the second node costs nothing
 * until the primary is slow.
 */
class HedgeRace implements SlowConnect, ConnectWatcher {
  readonly afterMs: number;
  private primary: StartedRequest | undefined;
  private primaryFailure: { error: ConnectError; ms: number } | undefined;
  private secondStarted = false;
  private secondStartedAt = 0;
  private won: StartedRequest | undefined;
  /** Every attempt failed: the primary's error is the request's. */
  private gaveUp = false;
  /** Connects not yet settled, and a second's head still being made. */
  private pending = 0;
  private readonly startedAt = Date.now();
  /** The caller, waiting for the second after the primary failed to open. */
  private waiter: { resolve: (c: StartedRequest) => void; reject: (e: unknown) => void } | undefined;
  /** Ends the request's keepAlive once every attempt settled (only when a second was asked for). */
  private allSettled: (() => void) | undefined;

  constructor(
    private readonly connect: Connect,
    private readonly headFor: (origin: Origin) => Promise<Uint8Array | undefined>,
    private readonly connectTimeoutMs: number,
    private readonly responseTimeoutMs: number,
    private readonly hedge: ConnectHedge,
  ) {
    this.afterMs = hedge.delayMs;
  }

  /** Starts the primary; a destination the runtime refuses at once throws its ConnectError, as without a hedge. */
  start(origin: Origin, head: Uint8Array): StartedRequest {
    try {
      // The primary's slow point rides on its own deadline timer (this.onSlow).
      this.primary = startRequest(this.connect, origin, head, this.connectTimeoutMs, this.responseTimeoutMs, this, this);
    } catch (e) {
      const error = e instanceof ConnectError ? e : new ConnectError(String(e), origin, { cause: e });
      this.gaveUp = true;
      this.hedge.settled(origin, { ms: 0, error, used: true });
      throw error;
    }
    this.pending = 1;
    return this.primary;
  }

  /** The primary's head came in: it opened (told before its head in the runtime; here if not). */
  answered(conn: StartedRequest): void {
    if (this.won === undefined) this.opened(conn);
  }

  /** The primary's wait for its head failed with `e`: the connection to read instead, or the error to throw. */
  instead(first: StartedRequest, e: unknown): Promise<StartedRequest> {
    if (e === SUPERSEDED && this.won !== undefined) return Promise.resolve(this.won);
    // Opened, then failed (reset, timeout, malformed): the request's own error.
    if (this.won === first || !(e instanceof ConnectError)) return Promise.reject(e);
    if (this.won !== undefined) return Promise.resolve(this.won);
    if (this.gaveUp || this.primaryFailure === undefined) return Promise.reject(this.primaryFailure?.error ?? e);
    // The second is still connecting (or its head being made): its outcome decides.
    return new Promise<StartedRequest>((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  opened(conn: StartedRequest): void {
    if (conn === this.won) return;
    this.pending--;
    const ms = Date.now() - (conn === this.primary ? this.startedAt : this.secondStartedAt);
    if (this.won !== undefined || this.gaveUp) {
      // Opened too late: closed, its answer (if any) is never read.
      conn.close();
      this.hedge.settled(conn.origin, { ms, used: false });
    } else {
      this.won = conn;
      if (this.primaryFailure) this.hedge.settled(this.primary!.origin, { ...this.primaryFailure, used: false });
      this.hedge.settled(conn.origin, { ms, used: true });
      if (conn !== this.primary) {
        // The request goes over the second: the caller stops waiting for the primary's answer.
        this.primary!.supersede();
        this.waiter?.resolve(conn);
      }
    }
    this.checkSettled();
  }

  failed(conn: StartedRequest, error: ConnectError): void {
    this.pending--;
    const ms = Date.now() - (conn === this.primary ? this.startedAt : this.secondStartedAt);
    if (this.won !== undefined || this.gaveUp) {
      this.hedge.settled(conn.origin, { ms, error, used: false });
    } else if (conn === this.primary) {
      this.primaryFailure = { error, ms };
      this.giveUp();
    } else {
      this.hedge.settled(conn.origin, { ms, error, used: false });
      // The first node's own error is the one thrown, if it failed too.
      this.giveUp();
    }
    this.checkSettled();
  }

  /** Every attempt failed: the caller sees the first node's error, as without a hedge. */
  private giveUp(): void {
    if (this.gaveUp || this.won !== undefined || this.pending > 0 || this.primaryFailure === undefined) return;
    this.gaveUp = true;
    this.hedge.settled(this.primary!.origin, { ...this.primaryFailure, used: true });
    this.waiter?.reject(this.primaryFailure.error);
  }

  private checkSettled(): void {
    if (this.pending === 0) this.allSettled?.();
  }

  /** The primary has not opened within afterMs (its deadline's first stop). */
  onSlow(): void {
    if (this.secondStarted || this.won !== undefined || this.primaryFailure !== undefined) return;
    this.secondStarted = true;
    // The losing attempt settles after the winner answered: the request's context stays alive for it.
    this.hedge.keepAlive(new Promise<void>((resolve) => (this.allSettled = resolve)));
    const second = this.hedge.next();
    if (second === undefined) return;
    // Held pending while its head is made: the primary's failure waits for it.
    this.pending++;
    this.headFor(second)
      .catch(() => undefined)
      .then((head) => {
        this.pending--;
        // No head for it (it cannot be written safely), or the primary opened meanwhile: no second.
        if (head === undefined || this.won !== undefined || this.gaveUp) {
          this.giveUp();
          this.checkSettled();
          return;
        }
        this.startSecond(second, head);
      });
  }

  private startSecond(origin: Origin, head: Uint8Array): void {
    this.secondStartedAt = Date.now();
    try {
      // Its answer is read only if it wins (instead()).
      startRequest(this.connect, origin, head, this.connectTimeoutMs, this.responseTimeoutMs, undefined, this);
    } catch (e) {
      const error = e instanceof ConnectError ? e : new ConnectError(String(e), origin, { cause: e });
      this.hedge.settled(origin, { ms: 0, error, used: false });
      this.giveUp();
      this.checkSettled();
      return;
    }
    this.pending++;
  }
}
