import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { bearer, tokensEqual } from "./index.ts";

function app(token: string | undefined, refused: string[] = []) {
  const a = new Hono();
  a.use("*", bearer({ token, onRefused: (reason) => refused.push(reason) }));
  a.get("/x", (c) => c.text("in"));
  return a;
}

describe("bearer middleware", () => {
  it("lets the right token through, case-insensitive scheme", async () => {
    for (const header of ["Bearer s3cret", "bearer s3cret", "Bearer   s3cret "]) {
      const res = await app("s3cret").request("/x", { headers: { authorization: header } });
      expect(res.status, header).toBe(200);
    }
  });

  it("refuses missing, malformed and wrong tokens with 401 and says why", async () => {
    const refused: string[] = [];
    const a = app("s3cret", refused);
    for (const header of [undefined, "Basic czNjcmV0", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Bearer s3cret extra"]) {
      const res = await a.request("/x", header ? { headers: { authorization: header } } : {});
      expect(res.status, String(header)).toBe(401);
      expect(((await res.json()) as { error: string }).error).toMatch(/^unauthorized: (missing bearer token|malformed Authorization header|wrong token) \(send Authorization: Bearer <EDGELB_PUSH_TOKEN>\)$/);
    }
    expect(refused).toEqual([
      "missing bearer token",
      "malformed Authorization header",
      "malformed Authorization header",
      "wrong token",
      "wrong token",
      "malformed Authorization header",
    ]);
  });

  it("disables everything behind it when no token is configured", async () => {
    const res = await app(undefined).request("/x", { headers: { authorization: "Bearer " } });
    expect(res.status).toBe(403);
  });

  it("compares digests, so tokens of any length compare safely", async () => {
    expect(await tokensEqual("a", "a")).toBe(true);
    expect(await tokensEqual("a", "ab")).toBe(false);
    expect(await tokensEqual("", "x".repeat(1000))).toBe(false);
  });
});
