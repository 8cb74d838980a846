// One served kind, declared once: its apiVersion, kind and scope; the names
// the API derives from them (lowercase singular, plural) and the defaults
// every kind shares. resources.ts and gateway.ts declare their kinds with it.
import type { PatchSchema } from "./patch.ts";
import type { ResourceType } from "./resources.ts";
import { defaultPrinter } from "./table.ts";

/** Finalizers and owner references merge like upstream's, for every kind. */
export const META_PATCH_SCHEMA: PatchSchema = {
  "metadata.finalizers": {},
  "metadata.ownerReferences": { mergeKey: "uid" },
};

/** The plural as the API spells it: gatewayclass → gatewayclasses, endpoints → endpoints, lease → leases. */
export function pluralOf(singular: string): string {
  if (singular.endsWith("ss")) return `${singular}es`;
  return singular.endsWith("s") ? singular : `${singular}s`;
}

/** A kind served at `apiVersion` ("v1", "apps/v1"), with `rest` over the shared defaults. */
export function defineResource(apiVersion: string, kind: string, scope: "Namespaced" | "Cluster", rest: Partial<ResourceType> = {}): ResourceType {
  const slash = apiVersion.lastIndexOf("/");
  const singular = kind.toLowerCase();
  return {
    group: slash === -1 ? "" : apiVersion.slice(0, slash),
    version: apiVersion.slice(slash + 1),
    kind,
    singular,
    plural: pluralOf(singular),
    namespaced: scope === "Namespaced",
    shortNames: [],
    hasStatus: false,
    resetStatusOnCreate: false,
    allowCreateOnUpdate: false,
    fieldSelectors: [],
    patchSchema: META_PATCH_SCHEMA,
    printer: defaultPrinter,
    microTimeFields: [],
    timeFields: [],
    ...rest,
  };
}
