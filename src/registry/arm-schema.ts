import { z } from "zod";
import { RegistryStateInvalidError } from "../errors.js";
import type { ArmOperation } from "./arm-errors.js";
import type { RegistryRef, RegistrySnapshot } from "./types.js";

/**
 * What the gateway relies on in the SDK's (flattened) models, checked before use: a document
 * that breaks these is refused rather than half-read, because a wrong rule list or limit would
 * make the next write wrong. Optional ARM properties may come back as `null`.
 */

const ipRuleSchema = z.object({
  // `Allow` is the only action ARM knows; anything else would change what a rule means.
  action: z.literal("Allow").nullish(),
  iPAddressOrRange: z.string().min(1),
});

export const registryDocumentSchema = z.object({
  location: z.string().min(1),
  sku: z.object({ name: z.string().min(1) }),
  provisioningState: z.string().min(1),
  publicNetworkAccess: z.string().nullish(),
  networkRuleBypassOptions: z.string().nullish(),
  networkRuleBypassAllowedForTasks: z.boolean().nullish(),
  networkRuleSet: z
    .object({
      defaultAction: z.enum(["Allow", "Deny"]),
      ipRules: z.array(ipRuleSchema).nullish(),
    })
    .nullish(),
});

export const usageListSchema = z.object({
  value: z
    .array(z.object({ name: z.string().nullish(), limit: z.number().nullish(), currentValue: z.number().nullish() }))
    .nullish(),
});

export const replicationSchema = z.object({ location: z.string().min(1) });

export type RegistryDocument = z.infer<typeof registryDocumentSchema>;

/** The documented default when `listUsages` has no `IPRules` entry (azure-facts §3). */
export const DEFAULT_RULE_LIMIT = 100;

export function parseArm<T>(schema: z.ZodType<T>, value: unknown, ref: RegistryRef, operation: ArmOperation): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`);
  throw new RegistryStateInvalidError(
    `ARM's answer to ${operation} for registry ${ref.name} does not have the expected shape: ${issues.join("; ")}.`,
    {
      details: { registryId: ref.id, registry: ref.name, operation, reason: "schema", issues },
      remedy:
        "Nothing was written. Check ARM_ENDPOINT; if it is Azure Resource Manager, the registry API may have changed: report it.",
    },
  );
}

/**
 * Legacy virtual-network rules in use (`VNetRules`' currentValue). A missing entry or value is 0:
 * registries without the legacy feature do not list it. A negative or fractional count is refused.
 */
export function legacyVirtualNetworkRulesFrom(usages: z.infer<typeof usageListSchema>, ref: RegistryRef): number {
  const entry = (usages.value ?? []).find((usage) => usage.name?.toLowerCase() === "vnetrules");
  const count = entry?.currentValue ?? 0;
  if (!Number.isInteger(count) || count < 0) {
    throw new RegistryStateInvalidError(
      `ARM lists a VNetRules usage for registry ${ref.name} with an unusable count (${String(count)}).`,
      {
        details: { registryId: ref.id, registry: ref.name, operation: "listUsages", reason: "vnet-rules" },
        remedy: "Nothing was written. Report it: the count decides whether a write could drop virtual-network rules.",
      },
    );
  }
  return count;
}

/** The `IPRules` limit, or the documented default when ARM does not list one. */
export function ruleLimitFrom(
  usages: z.infer<typeof usageListSchema>,
  ref: RegistryRef,
): Pick<RegistrySnapshot, "ruleLimit" | "ruleLimitSource"> {
  const entry = (usages.value ?? []).find((usage) => usage.name?.toLowerCase() === "iprules");
  if (entry === undefined) return { ruleLimit: DEFAULT_RULE_LIMIT, ruleLimitSource: "default" };
  const limit = entry.limit;
  if (limit === null || limit === undefined || !Number.isInteger(limit) || limit < 0) {
    throw new RegistryStateInvalidError(
      `ARM lists an IPRules usage for registry ${ref.name} without a usable limit (${String(limit)}).`,
      {
        details: { registryId: ref.id, registry: ref.name, operation: "listUsages", reason: "limit" },
        remedy: "Nothing was written. Report it: the rule limit is needed to plan within the quota.",
      },
    );
  }
  return { ruleLimit: limit, ruleLimitSource: "listUsages" };
}

export function toSnapshot(
  ref: RegistryRef,
  document: RegistryDocument,
  limit: Pick<RegistrySnapshot, "ruleLimit" | "ruleLimitSource">,
  replicaLocations: readonly string[],
  legacyVirtualNetworkRules = 0,
): RegistrySnapshot {
  const ruleSet = document.networkRuleSet ?? undefined;
  return {
    ref,
    location: document.location,
    sku: document.sku.name,
    provisioningState: document.provisioningState,
    publicNetworkAccess: document.publicNetworkAccess ?? undefined,
    // ARM's meaning of an absent rule set: the firewall is off.
    defaultAction: ruleSet?.defaultAction ?? "Allow",
    ipRules: (ruleSet?.ipRules ?? []).map((rule) => rule.iPAddressOrRange),
    ruleLimit: limit.ruleLimit,
    ruleLimitSource: limit.ruleLimitSource,
    networkRuleBypassOptions: document.networkRuleBypassOptions ?? undefined,
    networkRuleBypassAllowedForTasks: document.networkRuleBypassAllowedForTasks ?? undefined,
    replicaLocations: [...new Set(replicaLocations)],
    legacyVirtualNetworkRules,
  };
}
