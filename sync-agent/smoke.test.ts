import { expect, it } from "vitest";
import { parseSnapshot } from "../worker/snapshot/schema.ts";
it("parses", () => { expect(parseSnapshot("{").ok).toBe(false); });
