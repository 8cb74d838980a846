// The GatewayClass SupportedVersion condition from the installed CRDs' bundle versions.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isSupportedBundle, parseBundleVersion, supportedVersionCondition, SUPPORTED } from "./versions.ts";

const crds = (...versions: (string | undefined)[]) => ({ crds: versions.map((bundleVersion, i) => ({ name: `kind${i}.gateway.networking.k8s.io`, bundleVersion })) });

describe("SupportedVersion", () => {
  it("True when every CRD carries a supported bundle version", () => {
    expect(supportedVersionCondition(crds("v1.3.0", "v1.3.0"), 4)).toMatchObject({ type: "SupportedVersion", status: "True", reason: "SupportedVersion", observedGeneration: 4, message: expect.stringContaining(`"v1.3.0"`) });
    expect(supportedVersionCondition(crds("v1.0.0", "v1.6.1", "v1.6.0-rc.1"), 1).status).toBe("True");
  });

  it("False, UnsupportedVersion, naming each CRD and the supported range, for an unknown, missing or malformed version", () => {
    for (const bad of ["v2.0.0", "v0.8.1", `v1.${SUPPORTED.maxMinor + 1}.0`, undefined, "1.3.0", "v1.3", "latest", "v1.3.0\n"]) {
      const c = supportedVersionCondition(crds("v1.3.0", bad), 2);
      expect(c, String(bad)).toMatchObject({ status: "False", reason: "UnsupportedVersion" });
      expect(c.message).toContain("kind1.gateway.networking.k8s.io");
      expect(c.message).toContain(`supported: v1.0.0 to v1.${SUPPORTED.maxMinor}.x`);
      expect(c.message).not.toContain("kind0.");
    }
    expect(supportedVersionCondition({ error: "403 Forbidden" }, 1)).toMatchObject({ status: "False", reason: "UnsupportedVersion", message: expect.stringContaining("403 Forbidden") });
  });

  it("a hostile annotation is quoted and cut short in the message", () => {
    const c = supportedVersionCondition(crds("x".repeat(10_000)), 1);
    expect(c.message.length).toBeLessThan(400);
  });

  it("parses exactly the semantic versions it prints back (property)", () => {
    const n = fc.integer({ min: 0, max: 99_999 });
    fc.assert(
      fc.property(n, n, n, fc.option(fc.stringMatching(/^-[0-9A-Za-z]{1,8}(\.[0-9A-Za-z]{1,8})?$/), { nil: undefined }), (major, minor, patch, pre) => {
        expect(parseBundleVersion(`v${major}.${minor}.${patch}${pre ?? ""}`)).toEqual({ major, minor, patch });
        expect(isSupportedBundle(`v${major}.${minor}.${patch}`)).toBe(major === 1 && minor <= SUPPORTED.maxMinor);
      }),
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        const v = parseBundleVersion(s);
        // Whatever parses is a "v" version with no whitespace or control characters around it.
        if (v) expect(s).toMatch(/^v\d+\.\d+\.\d+[-+0-9A-Za-z.]*$/);
      }),
    );
  });
});
