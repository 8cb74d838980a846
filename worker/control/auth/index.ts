// Who is calling the control endpoints, and what they may do. Three kinds of
// bearer token:
//   - the single token (EDGELB_PUSH_TOKEN, the small setup): everything;
//   - the read token (EDGELB_READ_TOKEN): GET only (status page, snapshots);
//   - a cluster's push token (EDGELB_PUSH_TOKENS): read, push and delete that
//     cluster only, so one cluster's agent cannot write another's snapshot.
// A given token is compared with every configured one, in constant time over
// SHA-256 digests and without stopping at a match, so neither content, length
// nor which token matched leaks through timing.
import type { MiddlewareHandler } from "hono";

export type Caller = { role: "admin" } | { role: "read" } | { role: "cluster"; cluster: string };

export type Action = "read-status" | "read-cluster" | "write-cluster";

export interface TokenConfig {
  pushToken: string | undefined;
  readToken: string | undefined;
  clusterTokens: ReadonlyMap<string, string>;
}

async function digest(s: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
}

export async function tokensEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/** The configured tokens, digested once per isolate. */
export class TokenTable {
  private entries: Promise<{ digest: ArrayBuffer; caller: Caller }[]> | undefined;
  readonly configured: boolean;

  constructor(private readonly config: TokenConfig) {
    this.configured = config.pushToken !== undefined || config.readToken !== undefined || config.clusterTokens.size > 0;
  }

  private table() {
    this.entries ??= (async () => {
      const list: { token: string; caller: Caller }[] = [];
      if (this.config.pushToken !== undefined) list.push({ token: this.config.pushToken, caller: { role: "admin" } });
      if (this.config.readToken !== undefined) list.push({ token: this.config.readToken, caller: { role: "read" } });
      for (const [cluster, token] of this.config.clusterTokens) list.push({ token, caller: { role: "cluster", cluster } });
      return Promise.all(list.map(async (e) => ({ digest: await digest(e.token), caller: e.caller })));
    })();
    return this.entries;
  }

  /** The caller a token identifies; the first configured match wins (admin before read). */
  async identify(token: string): Promise<Caller | undefined> {
    const [given, entries] = await Promise.all([digest(token), this.table()]);
    let found: Caller | undefined;
    for (const e of entries) {
      if (crypto.subtle.timingSafeEqual(given, e.digest) && !found) found = e.caller;
    }
    return found;
  }
}

/** Pure: may this caller do this to this cluster? */
export function allowed(caller: Caller, action: Action, cluster?: string): boolean {
  switch (caller.role) {
    case "admin":
      return true;
    case "read":
      return action !== "write-cluster";
    case "cluster":
      return action !== "read-status" && cluster === caller.cluster;
  }
}

/** What a refused caller is told: the rule, not the configuration. */
export function forbiddenMessage(caller: Caller, action: Action, cluster?: string): string {
  if (caller.role === "read") return "forbidden: the read token cannot change snapshots";
  if (caller.role === "cluster") {
    return action === "read-status"
      ? `forbidden: the push token of cluster "${caller.cluster}" cannot read the status; use the read token`
      : `forbidden: the push token of cluster "${caller.cluster}" cannot access cluster "${cluster ?? ""}"`;
  }
  return "forbidden";
}

export interface BearerOptions {
  tokens: TokenTable;
  onRefused?: (reason: string, request: Request, status: 401 | 403) => void;
}

export type AuthVariables = { caller: Caller };

/** Identifies the caller (401 when unknown, 403 when no token is configured) and sets `caller`. */
export function bearer(opts: BearerOptions): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    if (!opts.tokens.configured) {
      opts.onRefused?.("disabled", c.req.raw, 403);
      return c.json(
        { error: "control endpoints are disabled: set the EDGELB_PUSH_TOKEN, EDGELB_PUSH_TOKENS or EDGELB_READ_TOKEN secret to enable them" },
        403,
      );
    }
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    const caller = m ? await opts.tokens.identify(m[1]!) : undefined;
    if (!caller) {
      const reason = m ? "wrong token" : header ? "malformed Authorization header" : "missing bearer token";
      opts.onRefused?.(reason, c.req.raw, 401);
      c.header("www-authenticate", 'Bearer realm="edgelb"');
      return c.json({ error: `unauthorized: ${reason} (send Authorization: Bearer <token>)` }, 401);
    }
    c.set("caller", caller);
    await next();
  };
}
