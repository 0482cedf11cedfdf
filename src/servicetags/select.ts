import { InvalidPrefixError, TagNotFoundError, UsageError } from "../errors.js";
import { isIPv6Text, parsePrefix, type Prefix } from "../prefixes/ipv4.js";
import type { ServiceTagsFile } from "./schema.js";
import { closestNames } from "./suggest.js";

export const ACR_TAG = "AzureContainerRegistry";

export interface TagSelector {
  /** ARM locations (`eastus`, `East US`): each means tag `AzureContainerRegistry.<Region>`. */
  readonly regions?: readonly string[];
  /** Full tag names (`AzureContainerRegistry` for the global tag). */
  readonly tagNames?: readonly string[];
}

export interface SelectedTag {
  /** As published, e.g. `AzureContainerRegistry.EastUS`. */
  readonly name: string;
  readonly changeNumber: number;
  /** `properties.region` as published ("" for global tags); informative only, never matched on. */
  readonly region: string;
  /** The IPv4 prefixes as published (IPv6 removed), in file order. */
  readonly ipv4: string[];
  /** The same prefixes, parsed (strict: host bits set is an error). */
  readonly prefixes: Prefix[];
  /** IPv6 prefixes skipped: ACR IP rules are IPv4 only. */
  readonly ipv6Count: number;
}

export interface TagSelection {
  /** In selector order (regions first, then tag names), without duplicates. */
  readonly tags: SelectedTag[];
}

/**
 * `eastus` → `AzureContainerRegistry.eastus`; tag names are matched case-insensitively, so this
 * finds `AzureContainerRegistry.EastUS`. Spaces are dropped so the display name `East US` works
 * too. The tag NAME carries the ARM location; `properties.region` does not always (`brazilse`,
 * `centralfrance`, `isrealcentral`, ...).
 */
export function acrTagNameForRegion(region: string): string {
  const location = region.replace(/\s+/g, "");
  if (location === "")
    throw new UsageError("A region name is empty.", { remedy: "Give ARM locations such as 'eastus,westeurope'." });
  return `${ACR_TAG}.${location}`;
}

/** The regions that have an `AzureContainerRegistry.<Region>` tag in the file, as lowercase ARM locations, sorted. */
export function availableAcrRegions(file: ServiceTagsFile): string[] {
  const prefix = `${ACR_TAG.toLowerCase()}.`;
  const regions = new Set<string>();
  for (const tag of file.values) {
    const name = tag.name.toLowerCase();
    if (name.startsWith(prefix) && name.length > prefix.length) regions.add(name.slice(prefix.length));
  }
  return [...regions].sort();
}

const AVAILABLE_IN_MESSAGE = 8;

/**
 * Picks the selected tags and parses their prefixes. Pure. Throws `TagNotFoundError` naming every
 * missing tag (a missing tag is never "allow nothing"), `InvalidPrefixError` for a published IPv4
 * prefix that is malformed or has host bits set, `UsageError` for an empty selector.
 */
export function selectTags(file: ServiceTagsFile, selector: TagSelector): TagSelection {
  const wanted: string[] = [];
  const fromRegion = new Map<string, string>();
  for (const region of selector.regions ?? []) {
    const name = acrTagNameForRegion(region);
    wanted.push(name);
    fromRegion.set(name, region);
  }
  for (const name of selector.tagNames ?? []) {
    const trimmed = name.trim();
    if (trimmed === "")
      throw new UsageError("A tag name is empty.", {
        remedy: "Give tag names such as 'AzureContainerRegistry.EastUS'.",
      });
    wanted.push(trimmed);
  }
  if (wanted.length === 0) {
    throw new UsageError("No service tag selected.", { remedy: "Select at least one region or tag name." });
  }

  const byName = new Map<string, ServiceTagsFile["values"][number]>();
  for (const tag of file.values) {
    const key = tag.name.toLowerCase();
    if (!byName.has(key)) byName.set(key, tag);
  }
  const seen = new Set<string>();
  const missing: string[] = [];
  const tags: SelectedTag[] = [];
  for (const name of wanted) {
    const key = name.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    const tag = byName.get(key);
    if (tag === undefined) {
      missing.push(name);
      continue;
    }
    tags.push(readTag(tag));
  }
  if (missing.length > 0) {
    const regions = availableAcrRegions(file);
    const tagNames = file.values.map((tag) => tag.name);
    const suggestions = missing.flatMap((name) => {
      const region = fromRegion.get(name);
      const close = region === undefined ? closestNames(name, tagNames) : closestNames(region, regions);
      return close.length === 0 ? [] : [`${region ?? name}: did you mean ${close.join(", ")}?`];
    });
    const more = regions.length - AVAILABLE_IN_MESSAGE;
    const shown = regions.slice(0, AVAILABLE_IN_MESSAGE).join(", ") + (more > 0 ? ` and ${more} more` : "");
    throw new TagNotFoundError(
      `Service tag${missing.length > 1 ? "s" : ""} ${missing.join(", ")} not found in the ${file.cloud} service-tags file (changeNumber ${file.changeNumber})${suggestions.length > 0 ? ` (${suggestions.join(" ")})` : ""}.`,
      {
        details: {
          missing,
          cloud: file.cloud,
          changeNumber: file.changeNumber,
          availableRegions: regions,
          suggestions,
        },
        remedy:
          regions.length === 0
            ? "The file has no AzureContainerRegistry.<Region> tags: check that it is the right file."
            : `Check the region names (ARM locations); regions with an ACR tag include: ${shown}. A tag that vanished from Microsoft's file must be dropped from the configuration on purpose.`,
      },
    );
  }
  return { tags };
}

function readTag(tag: ServiceTagsFile["values"][number]): SelectedTag {
  const ipv4: string[] = [];
  const prefixes: Prefix[] = [];
  let ipv6Count = 0;
  for (const text of tag.properties.addressPrefixes) {
    // Half of a tag is IPv6: test first rather than pay for a thrown error per prefix.
    if (isIPv6Text(text)) {
      ipv6Count += 1;
      continue;
    }
    try {
      prefixes.push(parsePrefix(text, { mode: "strict" }).prefix);
      ipv4.push(text);
    } catch (error) {
      if (error instanceof InvalidPrefixError) {
        throw new InvalidPrefixError(`Service tag ${tag.name}: ${error.message}`, {
          details: { ...error.details, tag: tag.name, changeNumber: tag.properties.changeNumber },
          remedy: "The published file looks damaged; keep the current rules and retry with the next publication.",
          cause: error,
        });
      }
      throw error;
    }
  }
  return {
    name: tag.name,
    changeNumber: tag.properties.changeNumber,
    region: tag.properties.region,
    ipv4,
    prefixes,
    ipv6Count,
  };
}
