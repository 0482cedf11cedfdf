import { GuardError } from "../errors.js";
import type { TargetConfig } from "../config/settings.js";
import type { RegistrySnapshot } from "../registry/types.js";
import type { ServiceTagsDocument } from "../servicetags/schema.js";
import { selectTags } from "../servicetags/select.js";
import { isIPv6Text } from "../prefixes/ipv4.js";
import type { DesiredSource } from "./plan.js";

const ACR_TAG = /^AzureContainerRegistry(\.|$)/i;

/**
 * Which tags a target needs: its configured regions, else the registry's own location, plus
 * geo-replica locations when asked. Pure. Refuses a file that holds suspiciously few ACR tags
 * (a truncated or filtered download must never shrink the allowlist).
 */
export function desiredFromServiceTags(
  document: ServiceTagsDocument,
  snapshot: RegistrySnapshot,
  target: TargetConfig,
  options: { readonly minAcrTags: number },
): Extract<DesiredSource, { kind: "service-tags" }> {
  const acrTags = document.file.values.filter((value) => ACR_TAG.test(value.name));
  if (acrTags.length < options.minAcrTags) {
    throw new GuardError(
      "source-too-small",
      `${document.origin.fileName} holds ${acrTags.length} AzureContainerRegistry tag(s), fewer than the sanity bound ${options.minAcrTags}.`,
      { details: { location: document.origin.location, acrTags: acrTags.length, minAcrTags: options.minAcrTags }, remedy: "Check the source; lower SERVICE_TAGS_MIN_ACR_TAGS only for a cloud that really publishes fewer tags." },
    );
  }
  const regions = unique([
    ...(target.regions ?? [snapshot.location]),
    ...(target.includeReplicas ? snapshot.replicaLocations : []),
  ].map((region) => region.toLowerCase()));
  const { tags } = selectTags(document.file, { regions });
  const adoptablePrefixes = acrTags.flatMap((tag) => tag.properties.addressPrefixes.filter((text) => !isIPv6Text(text)));
  return { kind: "service-tags", origin: document.origin, regions, tags, adoptablePrefixes };
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
