import type { TargetConfig } from "../config/settings.js";
import type { RegistrySnapshot } from "../registry/types.js";
import type { ServiceTagsDocument } from "../servicetags/schema.js";
import { selectTags } from "../servicetags/select.js";
import { isIPv6Text } from "../prefixes/ipv4.js";
import type { DesiredSource, PlanWarning } from "./plan.js";

const ACR_TAG = /^AzureContainerRegistry(\.|$)/i;

/**
 * Which tags a target needs: its configured regions, else the registry's own location, plus
 * geo-replica locations when asked. Pure. (A file with suspiciously few ACR tags never gets
 * here: the source chain refuses it, see SERVICE_TAGS_MIN_ACR_TAGS.)
 */
export function desiredFromServiceTags(
  document: ServiceTagsDocument,
  snapshot: RegistrySnapshot,
  target: TargetConfig,
): Extract<DesiredSource, { kind: "service-tags" }> {
  const regions = unique(
    [...(target.regions ?? [snapshot.location]), ...(target.includeReplicas ? snapshot.replicaLocations : [])].map(
      (region) => region.toLowerCase(),
    ),
  );
  const { tags } = selectTags(document.file, { regions });
  const adoptablePrefixes = adoptablePrefixesOf(document.file);
  return {
    kind: "service-tags",
    origin: document.origin,
    regions,
    tags,
    adoptablePrefixes,
    sourceWarnings: sourceWarnings(document, new Set(tags.map((tag) => tag.name))),
  };
}

// The same file serves every registry of a run (a thousand, with fan-out, per worker process): the
// scan of every ACR prefix, IPv6 validation included, is done once per file, not once per registry.
const adoptableByFile = new WeakMap<ServiceTagsDocument["file"], readonly string[]>();

/** IPv4 prefixes of every `AzureContainerRegistry*` tag in the file (the file is never mutated). */
function adoptablePrefixesOf(file: ServiceTagsDocument["file"]): readonly string[] {
  let prefixes = adoptableByFile.get(file);
  if (prefixes === undefined) {
    prefixes = file.values
      .filter((value) => ACR_TAG.test(value.name))
      .flatMap((tag) => tag.properties.addressPrefixes.filter((text) => !isIPv6Text(text)));
    adoptableByFile.set(file, prefixes);
  }
  return prefixes;
}

/** The chain's warnings, and a `source-lag` for each selected tag on which the file and the API disagree. */
function sourceWarnings(document: ServiceTagsDocument, selected: ReadonlySet<string>): PlanWarning[] {
  const lags: PlanWarning[] = (document.lags ?? [])
    .filter((lag) => selected.has(lag.name))
    .map((lag) => ({
      code: "source-lag",
      message: `${lag.name}: the weekly file has changeNumber ${lag.fileChangeNumber}, the Discovery API ${lag.apiChangeNumber}; the higher (${lag.used === "file" ? "the file" : "the Discovery API"}) is used.`,
      details: {
        tag: lag.name,
        fileChangeNumber: lag.fileChangeNumber,
        apiChangeNumber: lag.apiChangeNumber,
        used: lag.used,
      },
    }));
  return [...(document.warnings ?? []).map((w) => ({ code: w.code, message: w.message })), ...lags];
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
