import type { TargetConfig } from "../config/settings.js";
import { ConfigError, InvalidRegistryTagError, type AllowlistSyncError } from "../errors.js";
import type { LedgerState, LedgerStore } from "../ledger/types.js";
import { isKnownLocation, KNOWN_LOCATIONS } from "../servicetags/locations.js";
import type { ServiceTagsFile } from "../servicetags/schema.js";
import { acrTagNameForRegion, availableAcrRegions } from "../servicetags/select.js";
import { closestNames } from "../servicetags/suggest.js";

/**
 * A configured region whose tag is not in the file is one of two things. A typo (`eastuss`) is a
 * configuration error: exit 2 and "did you mean eastus", before anything runs. A region Microsoft
 * stopped publishing (it has done so for months) must stay the `tag-missing` guard, which keeps the
 * registry's current rules. A name is taken for a typo only when all three say so: it is not in the
 * current file, not a known ARM location (`KNOWN_LOCATIONS`), and the registry's ledger never
 * synced its tag (a region newer than the list, synced before, then dropped, stays the guard).
 */

/** The configured regions of `target` that are no region at all. Pure; the registry's own location never is. */
export function unknownRegions(
  target: TargetConfig,
  file: ServiceTagsFile,
  ledger: Pick<LedgerState, "appliedTagChangeNumbers"> | undefined,
): string[] {
  if (target.regions === undefined) return [];
  const inFile = new Set(availableAcrRegions(file));
  const synced = new Set(Object.keys(ledger?.appliedTagChangeNumbers ?? {}).map((name) => name.toLowerCase()));
  return target.regions.filter((region) => {
    const location = region.replace(/\s+/g, "").toLowerCase();
    if (location === "" || inFile.has(location) || isKnownLocation(location)) return false;
    return !synced.has(acrTagNameForRegion(location).toLowerCase());
  });
}

/**
 * The error for the unknown regions of one target: a `ConfigError` naming the setting they come
 * from (SYNC_REGIONS or TARGET_REGISTRIES), or an `InvalidRegistryTagError` naming the registry's
 * `acr-allowlist-sync.regions` tag (only that registry fails, as for any bad tag).
 */
export function unknownRegionError(
  target: TargetConfig,
  unknown: readonly string[],
  file: ServiceTagsFile,
): AllowlistSyncError {
  const candidates = [...new Set([...availableAcrRegions(file), ...KNOWN_LOCATIONS])];
  const suggestions = unknown.map((region) => {
    const close = closestNames(region, candidates);
    return close.length === 0 ? `'${region}'` : `'${region}' (did you mean ${close.join(", ")}?)`;
  });
  const what = `${unknown.length === 1 ? "region" : "regions"} ${suggestions.join(", ")} ${unknown.length === 1 ? "is" : "are"} not an Azure region (not in the ${file.cloud} service-tags file of changeNumber ${file.changeNumber}, not a known ARM location, nor a tag synced before)`;
  const remedy =
    "Give ARM locations such as 'eastus,westeurope' ('acr-allowlist-sync regions' lists the file's regions with an ACR tag).";
  const details = { registry: target.ref.id, unknownRegions: [...unknown], cloud: file.cloud };
  const from = target.regionsFrom ?? "SYNC_REGIONS";
  if (from.startsWith("acr-allowlist-sync.")) {
    return new InvalidRegistryTagError(`Tag ${from} on registry ${target.ref.id} is invalid: ${what}.`, {
      details: { ...details, tag: from },
      remedy: `Fix the tag (az tag update --operation merge); the registry is skipped until then, the others run. ${remedy}`,
    });
  }
  const where =
    from === "SYNC_REGIONS" ? "SYNC_REGIONS (--regions)" : `TARGET_REGISTRIES (regions of ${target.ref.name})`;
  return new ConfigError(`Setting ${where} is invalid: ${what}.`, {
    details: { ...details, setting: from },
    remedy,
  });
}

export interface RegionCheck {
  /** A setting names an unknown region: nothing may run (the CLI exits 2, the timer fails naming it). */
  readonly configError: ConfigError | undefined;
  /** Targets that fail on their own, by index: their tag names an unknown region, or their ledger is unreadable. */
  readonly failed: ReadonlyMap<number, unknown>;
}

/**
 * Checks the configured regions of every target against the file before any registry runs. The
 * ledger is read only for a name that is neither in the file nor a known location (a rare case).
 */
export async function checkRegionNames(
  targets: readonly TargetConfig[],
  file: ServiceTagsFile,
  ledger: Pick<LedgerStore, "read">,
): Promise<RegionCheck> {
  let configError: ConfigError | undefined;
  const failed = new Map<number, unknown>();
  for (const [index, target] of targets.entries()) {
    if (unknownRegions(target, file, undefined).length === 0) continue;
    let state: LedgerState | undefined;
    try {
      state = await ledger.read(target.ref.id);
    } catch (error) {
      failed.set(index, error);
      continue;
    }
    const unknown = unknownRegions(target, file, state);
    if (unknown.length === 0) continue;
    const error = unknownRegionError(target, unknown, file);
    if (error instanceof ConfigError) configError ??= error;
    else failed.set(index, error);
  }
  return { configError, failed };
}
