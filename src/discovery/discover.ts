import { targetFrom, type Settings, type TargetConfig } from "../config/settings.js";
import { ConfigError, describeError } from "../errors.js";
import { parseRegistryId } from "../registry/resource-id.js";
import { reportOutcome, type TargetOutcome } from "../sync/invocation.js";
import type { TelemetrySink } from "../telemetry/types.js";
import { resolveTargets } from "./targets.js";
import type { DiscoveryMemory, DiscoveryRequest, DiscoveryResult, DiscoverySource } from "./types.js";

export interface DiscoveryPorts {
  readonly discovery?: DiscoverySource | undefined;
  readonly discoveryMemory?: DiscoveryMemory | undefined;
  readonly telemetry: TelemetrySink;
}

export interface RunTargets {
  /** What to sync: explicit targets, then discovered ones. */
  readonly targets: readonly TargetConfig[];
  /** Discovered registries skipped (already reported as AllowlistSyncFailed). */
  readonly skipped: readonly TargetOutcome[];
  /** Registries that lost the tag since the last discovery (reported once, left as they are). */
  readonly untagged: readonly string[];
  /** Undefined when discovery is off. */
  readonly discovery: DiscoveryResult["stats"] | undefined;
  readonly discovered: number;
}

/**
 * The registries of one run: TARGET_REGISTRIES, plus (when a discovery tag is set) every tagged
 * Premium registry Resource Graph finds. Skips and "lost the tag" reports go to telemetry here,
 * once per run; a dry run reports skips but neither reports nor forgets lost registries, so the
 * next real run still does. A failed discovery is reported and thrown: the caller decides whether
 * the explicit targets run anyway.
 */
export async function resolveRunTargets(
  settings: Settings,
  ports: DiscoveryPorts,
  options: { readonly trigger: string; readonly dryRun: boolean; readonly request?: DiscoveryRequest | undefined },
): Promise<RunTargets> {
  const tag = options.request?.tag ?? settings.discovery.tag;
  if (tag === undefined)
    return { targets: settings.targets, skipped: [], untagged: [], discovery: undefined, discovered: 0 };
  const request: DiscoveryRequest = { tag, scopes: options.request?.scopes ?? settings.discovery.scopes };
  if (ports.discovery === undefined)
    throw new ConfigError("Discovery is on (TARGET_DISCOVERY_TAG) but this entry point has no Resource Graph client.");
  const started = Date.now();
  let result: DiscoveryResult;
  try {
    result = await ports.discovery.discover(request);
  } catch (error) {
    ports.telemetry.syncFailed({
      registry: `discovery:${tag.key}=${tag.value}`,
      dryRun: options.dryRun,
      errorType: (error as { code?: unknown }).code === "DiscoveryFailed" ? "DiscoveryFailed" : "UnexpectedError",
      message: describeError(error),
      durationMs: Date.now() - started,
      trigger: options.trigger,
    });
    throw error;
  }
  const previous = await ports.discoveryMemory?.read();
  const resolved = resolveTargets(settings.targets, result.registries, settings.targetDefaults, previous);
  const skipped = resolved.skipped.map((skip): TargetOutcome => ({
    target: targetFrom(parseRegistryId(skip.registryId), {}, settings.targetDefaults),
    ok: false,
    error: skip.error,
    durationMs: 0,
  }));
  for (const outcome of skipped) reportOutcome(ports.telemetry, outcome, options.trigger, options.dryRun);
  if (!options.dryRun) {
    for (const registry of resolved.untagged) ports.telemetry.registryUntagged({ registry, trigger: options.trigger });
    await ports.discoveryMemory?.write(resolved.remember);
  }
  return {
    targets: resolved.targets,
    skipped,
    untagged: resolved.untagged,
    discovery: result.stats,
    discovered: result.registries.length,
  };
}
