import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { allowed, bearer, forbiddenMessage, TokenTable, tokensEqual, type Action, type AuthVariables, type Caller } from "./index.ts";

function tokens(over: { pushToken?: string; readToken?: string; clusterTokens?: [string, string][] } = {}) {
  return new TokenTable({ pushToken: over.pushToken, readToken: over.readToken, clusterTokens: new Map(over.clusterTokens ?? []) });
}

function app(table: TokenTable, refused: string[] = []) {
  const a = new Hono<{ Variables: AuthVariables }>();
  a.use("*", bearer({ tokens: table, onRefused: (reason) => refused.push(reason) }));
  a.get("/x", (c) => c.json(c.get("caller")));
  return a;
}

describe("bearer middleware", () => {
  it("lets the right token through, case-insensitive scheme", async () => {
    for (const header of ["Bearer s3cret", "bearer s3cret", "Bearer   s3cret "]) {
      const res = await app(tokens({ pushToken: "s3cret" })).request("/x", { headers: { authorization: header } });
      expect(res.status, header).toBe(200);
      expect(await res.json()).toEqual({ role: "admin" });
    }
  });

  it("refuses missing, malformed and wrong tokens with 401 and says why", async () => {
    const refused: string[] = [];
    const a = app(tokens({ pushToken: "s3cret", readToken: "r3ad", clusterTokens: [["east", "e4st"]] }), refused);
    for (const header of [undefined, "Basic czNjcmV0", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Bearer s3cret extra"]) {
      const res = await a.request("/x", header ? { headers: { authorization: header } } : {});
      expect(res.status, String(header)).toBe(401);
      expect(((await res.json()) as { error: string }).error).toMatch(
        /^unauthorized: (missing bearer token|malformed Authorization header|wrong token) \(send Authorization: Bearer <token>\)$/,
      );
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
    const res = await app(tokens()).request("/x", { headers: { authorization: "Bearer " } });
    expect(res.status).toBe(403);
  });

  it("compares digests, so tokens of any length compare safely", async () => {
    expect(await tokensEqual("a", "a")).toBe(true);
    expect(await tokensEqual("a", "ab")).toBe(false);
    expect(await tokensEqual("", "x".repeat(1000))).toBe(false);
  });
});

describe("token roles", () => {
  it("tells the single, the read and each cluster's token apart", async () => {
    const t = tokens({ pushToken: "all", readToken: "look", clusterTokens: [["east", "tok-east"], ["west", "tok-west"]] });
    expect(await t.identify("all")).toEqual({ role: "admin" });
    expect(await t.identify("look")).toEqual({ role: "read" });
    expect(await t.identify("tok-east")).toEqual({ role: "cluster", cluster: "east" });
    expect(await t.identify("tok-west")).toEqual({ role: "cluster", cluster: "west" });
    expect(await t.identify("tok-eas")).toBeUndefined();
    expect(await t.identify("")).toBeUndefined();
  });

  it("allows each role exactly its actions", () => {
    const callers: [string, Caller][] = [
      ["admin", { role: "admin" }],
      ["read", { role: "read" }],
      ["east", { role: "cluster", cluster: "east" }],
    ];
    const cases: [Action, string | undefined][] = [
      ["read-status", undefined],
      ["read-cluster", "east"],
      ["read-cluster", "west"],
      ["write-cluster", "east"],
      ["write-cluster", "west"],
    ];
    const table = Object.fromEntries(callers.map(([name, caller]) => [name, cases.map(([action, cluster]) => allowed(caller, action, cluster))]));
    expect(table).toEqual({
      //      status read-east read-west write-east write-west
      admin: [true, true, true, true, true],
      read: [true, true, true, false, false],
      east: [false, true, false, true, false],
    });
    expect(forbiddenMessage({ role: "cluster", cluster: "east" }, "write-cluster", "west")).toBe(
      `forbidden: the push token of cluster "east" cannot access cluster "west"`,
    );
  });
});
