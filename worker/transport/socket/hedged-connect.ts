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
 * read at once, as without a hedge (no wait for the open in between). If it has
 * not opened within hedge.delayMs, the second node (hedge.next()) is started
 * too, with its own head from `headFor` (undefined: no second), and read the
 * same way. The first to open wins: its head is the result. The other is
 * closed when it opens, or fails on its own; its answer is never read. Every
 * outcome is reported through hedge.settled as openHedged does, and the caller
 * sees the primary's ConnectError when none opened.
 */
export function readHedgedHead(
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
  return new Promise<HedgedHead>((resolve, reject) => {
    const race = new HedgeRace(connect, headFor, connectTimeoutMs, responseTimeoutMs, hedge, parserOptions, resolve, reject);
    race.start(primary, head, parser);
  });
}

/**
 * One hedged request's race. Per request it is this object and the primary's
 * read: the slow point rides on the primary's own deadline timer (afterMs,
 * onSlow), the opens are told by its connection (ConnectWatcher), and the
 * second node costs nothing until the primary is slow.
 */
class HedgeRace implements SlowConnect, ConnectWatcher {
  readonly afterMs: number;
  private primary: StartedRequest | undefined;
  private primaryFailure: { error: ConnectError; ms: number } | undefined;
  private secondStarted = false;
  private secondStartedAt = 0;
  private won: StartedRequest | undefined;
  /** The caller has its answer (or error). */
  private done = false;
  /** Connects not yet settled, and a second's head still being made. */
  private pending = 0;
  private readonly startedAt = Date.now();
  /** Ends the request's keepAlive once every attempt settled (only when a second was asked for). */
  private allSettled: (() => void) | undefined;

  constructor(
    private readonly connect: Connect,
    private readonly headFor: (origin: Origin) => Promise<Uint8Array | undefined>,
    private readonly connectTimeoutMs: number,
    private readonly responseTimeoutMs: number,
    private readonly hedge: ConnectHedge,
    private readonly parserOptions: ResponseParserOptions,
    private readonly resolve: (r: HedgedHead) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.afterMs = hedge.delayMs;
  }

  start(origin: Origin, head: Uint8Array, parser: ResponseParser): void {
    this.pending++;
    let conn: StartedRequest;
    try {
      // The primary's slow point rides on its own deadline timer (this.onSlow).
      conn = startRequest(this.connect, origin, head, this.connectTimeoutMs, this.responseTimeoutMs, this, this);
    } catch (e) {
      // Refused at once (a destination the runtime forbids): as without a hedge.
      this.pending--;
      const error = e instanceof ConnectError ? e : new ConnectError(String(e), origin, { cause: e });
      this.primaryFailure = { error, ms: 0 };
      this.giveUp();
      return;
    }
    this.primary = conn;
    this.read(conn, parser);
  }

  private read(conn: StartedRequest, parser: ResponseParser): void {
    readStartedHead(conn, parser).then(
      (r) => {
        // A head means an open connection (told before it in the runtime; here if not).
        if (this.won === undefined) this.opened(conn);
        if (this.done || conn !== this.won) return; // a loser's answer is never read
        this.done = true;
        this.resolve({ conn, parser, head: r.head, pending: r.pending });
      },
      (e: unknown) => {
        if (this.done) return;
        if (conn === this.won) {
          // The chosen node opened, then failed: its error is the request's (not a ConnectError).
          this.done = true;
          this.reject(e);
        } else if (this.won === undefined && !(e instanceof ConnectError)) {
          this.done = true;
          this.reject(e);
        }
        // A ConnectError: the connect's end was told to failed(), which decides.
      },
    );
  }

  opened(conn: StartedRequest): void {
    if (conn === this.won) return;
    this.pending--;
    const ms = Date.now() - (conn === this.primary ? this.startedAt : this.secondStartedAt);
    if (this.won !== undefined || this.done) {
      // Opened too late: closed, its answer (if any) is never read.
      conn.close();
      this.hedge.settled(conn.origin, { ms, used: false });
    } else {
      this.won = conn;
      if (this.primaryFailure) this.hedge.settled(this.primary!.origin, { ...this.primaryFailure, used: false });
      this.hedge.settled(conn.origin, { ms, used: true });
    }
    this.checkSettled();
  }

  failed(conn: StartedRequest, error: ConnectError): void {
    this.pending--;
    const ms = Date.now() - (conn === this.primary ? this.startedAt : this.secondStartedAt);
    if (this.won !== undefined || this.done) {
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
    if (this.done || this.won !== undefined || this.pending > 0 || this.primaryFailure === undefined) return;
    this.done = true;
    this.hedge.settled(this.primary?.origin ?? this.primaryFailure.error.origin, { ...this.primaryFailure, used: true });
    this.reject(this.primaryFailure.error);
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
        if (head === undefined || this.won !== undefined || this.done) {
          this.giveUp();
          this.checkSettled();
          return;
        }
        this.startSecond(second, head);
      });
  }

  private startSecond(origin: Origin, head: Uint8Array): void {
    this.pending++;
    this.secondStartedAt = Date.now();
    let conn: StartedRequest;
    try {
      conn = startRequest(this.connect, origin, head, this.connectTimeoutMs, this.responseTimeoutMs, undefined, this);
    } catch (e) {
      this.pending--;
      const error = e instanceof ConnectError ? e : new ConnectError(String(e), origin, { cause: e });
      this.hedge.settled(origin, { ms: 0, error, used: false });
      this.giveUp();
      this.checkSettled();
      return;
    }
    this.read(conn, new ResponseParser(this.parserOptions));
  }
}
