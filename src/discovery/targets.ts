import { targetFrom, type TargetConfig, type TargetDefaults } from "../config/settings.js";
import { AllowlistSyncError, NetworkRulesNotSupportedError } from "../errors.js";
import { parseRegistryId } from "../registry/resource-id.js";
import { OVERRIDE_TAGS, overridesFromTags } from "./tags.js";
import type { DiscoveredRegistry } from "./types.js";

export interface SkippedRegistry {
  readonly registryId: string;
  readonly error: AllowlistSyncError;
}

export interface ResolvedTargets {
  /** Explicit targets first (they win), then discovered ones by resource ID. */
  readonly targets: readonly TargetConfig[];
  /** Discovered registries that cannot be synced as tagged (bad override tag, not Premium). */
  readonly skipped: readonly SkippedRegistry[];
  /** Registries discovered last time that no longer carry the tag (and are not explicit): report once. */
  readonly untagged: readonly string[];
  /** What to remember for next time: every registry discovered now. */
  readonly remember: readonly string[];
}

/**
 * Pure: merges the discovered registries into the explicit targets. Explicit settings win (an
 * explicitly listed registry keeps its TARGET_REGISTRIES configuration, its tags are not read); a
 * bad tag skips only that registry; a registry that lost the tag is left as it is.
 */
export function resolveTargets(
  explicit: readonly TargetConfig[],
  discovered: readonly DiscoveredRegistry[],
  defaults: TargetDefaults,
  previous: readonly string[] | undefined,
): ResolvedTargets {
  const seen = new Set(explicit.map((t) => t.ref.id.toLowerCase()));
  const targets: TargetConfig[] = [...explicit];
  const skipped: SkippedRegistry[] = [];
  const found = new Set<string>();
  for (const row of discovered) {
    const ref = parseRegistryId(row.id, "discovered registry");
    const key = ref.id.toLowerCase();
    found.add(key);
    if (seen.has(key)) continue;
    seen.add(key);
    if (row.sku !== "Premium") {
      skipped.push({
        registryId: ref.id,
        error: new NetworkRulesNotSupportedError(
          `Registry ${ref.name} carries the discovery tag but its SKU is ${row.sku}: IP rules need Premium.`,
          {
            details: { registry: ref.id, sku: row.sku },
            remedy: "Upgrade it (az acr update --sku Premium) or remove the discovery tag.",
          },
        ),
      });
      continue;
    }
    try {
      targets.push(
        targetFrom(
          ref,
          overridesFromTags(ref.id, row.tags, defaults.policy.minPrefixLength),
          defaults,
          OVERRIDE_TAGS.regions,
        ),
      );
    } catch (error) {
      if (!(error instanceof AllowlistSyncError)) throw error;
      skipped.push({ registryId: ref.id, error });
    }
  }
  const untagged = (previous ?? []).filter((id) => !found.has(id.toLowerCase()) && !explicitHas(explicit, id));
  const remember = [...new Set(discovered.map((row) => parseRegistryId(row.id).id))];
  return { targets, skipped, untagged, remember };
}

function explicitHas(explicit: readonly TargetConfig[], id: string): boolean {
  return explicit.some((t) => t.ref.id.toLowerCase() === id.toLowerCase());
}
