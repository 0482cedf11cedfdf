import { z } from "zod";
import { pinnedRuleProblem, TARGET_VALUE_SCHEMAS, type TargetOverrideValues } from "../config/settings.js";
import { InvalidRegistryTagError } from "../errors.js";

/**
 * Per-registry overrides from the registry's own tags, validated with the same value schemas as
 * the TARGET_REGISTRIES JSON form. Tag names are matched case-insensitively (as ARM does); an
 * unknown `acr-allowlist-sync.*` tag is refused like an unknown JSON key, so a typo such as
 * `.headrom` cannot be silently ignored. ARM tag values are strings of at most 256 characters.
 */
export const OVERRIDE_TAG_PREFIX = "acr-allowlist-sync.";

export const OVERRIDE_TAGS = {
  regions: `${OVERRIDE_TAG_PREFIX}regions`,
  headroom: `${OVERRIDE_TAG_PREFIX}headroom`,
  includeReplicas: `${OVERRIDE_TAG_PREFIX}include-replicas`,
  pinnedRules: `${OVERRIDE_TAG_PREFIX}pinned-rules`,
} as const;

const EXAMPLES: Readonly<Record<keyof typeof OVERRIDE_TAGS, string>> = {
  regions: "eastus,westus",
  headroom: "10",
  includeReplicas: "true",
  pinnedRules: "203.0.113.10,198.51.100.0/24",
};

// Commas or spaces: the portal's tag editor makes either easy to type.
const list = (value: string): string[] => value.split(/[\s,;]+/).filter((item) => item !== "");

const PARSERS: Readonly<Record<keyof typeof OVERRIDE_TAGS, (value: string) => z.ZodSafeParseResult<unknown>>> = {
  regions: (v) => TARGET_VALUE_SCHEMAS.regions.safeParse(list(v)),
  pinnedRules: (v) => TARGET_VALUE_SCHEMAS.pinnedRules.safeParse(list(v)),
  headroom: (v) => TARGET_VALUE_SCHEMAS.headroom.safeParse(/^\s*\d{1,4}\s*$/.test(v) ? Number(v) : Number.NaN),
  includeReplicas: (v) =>
    TARGET_VALUE_SCHEMAS.includeReplicas.safeParse(
      /^(true|yes|1)$/i.test(v.trim()) ? true : /^(false|no|0)$/i.test(v.trim()) ? false : v,
    ),
};

/**
 * The overrides a registry's tags ask for; throws `InvalidRegistryTagError` naming the tag. Pinned
 * rules are checked like SYNC_PINNED_RULES (valid, no host bits, not wider than `minPrefixLength`,
 * the registry's SYNC_MIN_PREFIX_LENGTH): a tag must not open more than a setting could.
 */
export function overridesFromTags(
  registryId: string,
  tags: Readonly<Record<string, string>> | undefined,
  minPrefixLength: number,
): TargetOverrideValues {
  const overrides: TargetOverrideValues = {};
  for (const [name, value] of Object.entries(tags ?? {})) {
    const lower = name.toLowerCase();
    if (!lower.startsWith(OVERRIDE_TAG_PREFIX)) continue;
    const field = (Object.keys(OVERRIDE_TAGS) as (keyof typeof OVERRIDE_TAGS)[]).find(
      (key) => OVERRIDE_TAGS[key] === lower,
    );
    if (field === undefined) {
      throw invalidTag(
        registryId,
        name,
        value,
        `it is not a known tag; known: ${Object.values(OVERRIDE_TAGS).join(", ")}`,
      );
    }
    const parsed = PARSERS[field](value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw invalidTag(
        registryId,
        name,
        value,
        `${issue?.message ?? "invalid"}; example: ${OVERRIDE_TAGS[field]}=${EXAMPLES[field]}`,
      );
    }
    if (field === "pinnedRules") {
      for (const rule of parsed.data as string[]) {
        const problem = pinnedRuleProblem(rule, minPrefixLength);
        if (problem !== undefined)
          throw invalidTag(registryId, name, value, `${problem}; example: ${OVERRIDE_TAGS[field]}=${EXAMPLES[field]}`);
      }
    }
    Object.assign(overrides, { [field]: parsed.data });
  }
  return overrides;
}

function invalidTag(registryId: string, tag: string, value: string, problem: string): InvalidRegistryTagError {
  const shown = value.length > 256 ? `${value.slice(0, 256)}…` : value;
  return new InvalidRegistryTagError(`Tag ${tag}='${shown}' on registry ${registryId} is invalid: ${problem}.`, {
    details: { registry: registryId, tag, value: shown },
    remedy:
      "Fix or remove the tag (az tag update --operation merge); the registry is skipped until then, the others run.",
  });
}
