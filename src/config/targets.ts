import { TargetNotConfiguredError, UsageError } from "../errors.js";
import type { TargetConfig } from "./settings.js";

/** Matches a configured target by resource ID or registry name (case-insensitive, like ARM). */
export function findTarget(targets: readonly TargetConfig[], requested: string | undefined): TargetConfig {
  if (requested === undefined) {
    const [only] = targets;
    if (targets.length === 1 && only !== undefined) return only;
    throw new UsageError(
      `${targets.length} registries are configured: say which one with ?registry=<name or resource ID>.`,
      {
        details: { configured: targets.map((t) => t.ref.name) },
      },
    );
  }
  const wanted = requested.trim().toLowerCase().replace(/\/+$/, "");
  const matches = targets.filter((t) => t.ref.id.toLowerCase() === wanted || t.ref.name.toLowerCase() === wanted);
  const [match] = matches;
  if (matches.length === 1 && match !== undefined) return match;
  if (matches.length > 1) {
    throw new UsageError(
      `Registry name '${requested}' matches ${matches.length} configured registries; use the resource ID.`,
      { details: { matches: matches.map((t) => t.ref.id) } },
    );
  }
  throw new TargetNotConfiguredError(`Registry '${requested}' is not configured for this service.`, {
    details: { requested },
    remedy: "Add it to TARGET_REGISTRIES or ask for one of the configured registries.",
  });
}
