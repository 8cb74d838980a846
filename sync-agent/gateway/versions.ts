// Which Gateway API CRD bundle is installed, and whether edgelb supports it:
// the GatewayClass `SupportedVersion` condition (gateway.networking.k8s.io v1,
// GatewayClassConditionStatusSupportedVersion). The version of a CRD is its
// `gateway.networking.k8s.io/bundle-version` annotation; the spec says a CRD
// without it, or with a version the implementation does not recognise, makes
// the condition False. edgelb then serves best effort: Accepted stays True.
import type { Condition } from "./types.ts";

export const BUNDLE_VERSION_ANNOTATION = "gateway.networking.k8s.io/bundle-version";
/** The CRDs whose versions are judged: the kinds edgelb reads. */
export const JUDGED_CRDS = ["gatewayclasses", "gateways", "httproutes", "referencegrants"].map((p) => `${p}.gateway.networking.k8s.io`);

/** Bundles edgelb was checked against: v1.0.0 up to the newest minor below (patches and pre-releases of these included). */
export const SUPPORTED = { major: 1, minMinor: 0, maxMinor: 6 } as const;
export const SUPPORTED_TEXT = `v${SUPPORTED.major}.${SUPPORTED.minMinor}.0 to v${SUPPORTED.major}.${SUPPORTED.maxMinor}.x`;

/** What the agent read: each installed CRD's annotation (undefined: none), or why it could not read them. */
export type CrdBundles = { crds: { name: string; bundleVersion: string | undefined }[] } | { error: string };

const SEMVER = /^v(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})(-[0-9A-Za-z.-]{1,64})?(\+[0-9A-Za-z.-]{1,64})?$/;

/** Parses a bundle version ("v1.3.0", "v1.6.0-rc.1"); undefined when it is not one. */
export function parseBundleVersion(value: unknown): { major: number; minor: number; patch: number } | undefined {
  if (typeof value !== "string") return undefined;
  const m = SEMVER.exec(value);
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

export function isSupportedBundle(value: unknown): boolean {
  const v = parseBundleVersion(value);
  return v !== undefined && v.major === SUPPORTED.major && v.minor >= SUPPORTED.minMinor && v.minor <= SUPPORTED.maxMinor;
}

/** Quoted and cut short: an annotation is anyone's text. */
const shown = (v: string | undefined) => (v === undefined ? "no bundle-version annotation" : JSON.stringify(v.slice(0, 64)));

/** The SupportedVersion condition for the installed CRDs (pure). */
export function supportedVersionCondition(bundles: CrdBundles, generation: number | undefined): Condition {
  const c = (ok: boolean, reason: string, message: string): Condition => ({ type: "SupportedVersion", status: ok ? "True" : "False", reason, message: message.slice(0, 32_768), ...(generation === undefined ? {} : { observedGeneration: generation }) });
  if ("error" in bundles) return c(false, "UnsupportedVersion", `could not read the Gateway API CRDs to check their bundle version (${bundles.error.slice(0, 200)}); supported: ${SUPPORTED_TEXT}`);
  const bad = bundles.crds.filter((x) => !isSupportedBundle(x.bundleVersion));
  const found = [...new Set(bundles.crds.map((x) => shown(x.bundleVersion)))].join(", ") || "none";
  if (bundles.crds.length === 0) return c(false, "UnsupportedVersion", `no Gateway API CRD found to check; supported: ${SUPPORTED_TEXT}`);
  if (bad.length === 0) return c(true, "SupportedVersion", `Gateway API CRDs ${found} (supported: ${SUPPORTED_TEXT})`);
  return c(
    false,
    "UnsupportedVersion",
    `installed Gateway API CRDs not supported: ${bad.map((x) => `${x.name} ${shown(x.bundleVersion)}`).join(", ")}; supported: ${SUPPORTED_TEXT}; edgelb serves them best effort`,
  );
}
