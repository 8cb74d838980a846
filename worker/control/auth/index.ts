// Bearer-token guard for the control endpoints. The comparison is constant
// time over SHA-256 digests, so neither content nor length leaks through
// timing. Without a configured token the endpoints are disabled.
import type { MiddlewareHandler } from "hono";

export interface BearerOptions {
  token: string | undefined;
  onRefused?: (reason: string, request: Request) => void;
}

async function digest(s: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
}

export async function tokensEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

export function bearer(opts: BearerOptions): MiddlewareHandler {
  return async (c, next) => {
    if (!opts.token) {
      opts.onRefused?.("disabled", c.req.raw);
      return c.json({ error: "control endpoints are disabled: set the EDGELB_PUSH_TOKEN secret to enable them" }, 403);
    }
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m || !(await tokensEqual(m[1]!, opts.token))) {
      const reason = m ? "wrong token" : header ? "malformed Authorization header" : "missing bearer token";
      opts.onRefused?.(reason, c.req.raw);
      c.header("www-authenticate", 'Bearer realm="edgelb"');
      return c.json({ error: `unauthorized: ${reason} (send Authorization: Bearer <EDGELB_PUSH_TOKEN>)` }, 401);
    }
    await next();
  };
}
