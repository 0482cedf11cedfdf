import { readFileSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";
import { fixturePath } from "../support/paths.js";

/**
 * Rebuilds the weekly `ServiceTags_Public_<date>.json` publications 2021–2025 (their
 * `AzureContainerRegistry*` tags) from `acr-history-deltas-2021-2025.json`: a base snapshot plus
 * one delta per publication (see test/fixtures/servicetags/README.md of the shared fixtures).
 * The deltas keep what a sync depends on (name, region, per-tag changeNumber, prefixes); they do
 * not keep `regionId` or `networkFeatures`, so the rebuilt files leave those out, and they keep
 * no prefix order, so prefixes are put in Microsoft's order (IPv4 ascending, then IPv6 ascending),
 * which the real files follow.
 */

export const HISTORY_FIXTURE = "acr-history-deltas-2021-2025.json";

const prefixText = z.string().refine((text) => {
  const [address = "", length, ...rest] = text.split("/");
  return rest.length === 0 && length !== undefined && /^\d{1,3}$/.test(length) && (isIPv4(address) || isIPv6(address));
}, "expected an IPv4 or IPv6 prefix in CIDR notation");

const tagStateSchema = z.strictObject({
  region: z.string(),
  changeNumber: z.number().int().nonnegative(),
  addressPrefixes: z.array(prefixText),
});

const tagChangeSchema = z.union([
  z.strictObject({
    new_tag: z.literal(true),
    region: z.string(),
    changeNumber: z.number().int().nonnegative(),
    addressPrefixes: z.array(prefixText),
  }),
  z.strictObject({ removed_tag: z.literal(true) }),
  z.strictObject({
    changeNumber: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
    added: z.array(prefixText),
    removed: z.array(prefixText),
  }),
]);

const versionSchema = z.strictObject({
  label: z.string().regex(/^\d{8}$/, "expected the file-name date YYYYMMDD"),
  label_source: z.string(),
  changeNumber: z.number().int().nonnegative(),
  first_seen_utc_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  source: z.string(),
  full: z.record(z.string(), tagStateSchema).optional(),
  changes: z.record(z.string(), tagChangeSchema).optional(),
});

const historySchema = z.object({ description: z.string(), versions: z.array(versionSchema).min(1) });

export type AcrHistory = z.infer<typeof historySchema>;

/** A tag as it appears in a service-tags file (the fields the deltas keep). */
export interface RebuiltTag {
  readonly name: string;
  readonly id: string;
  readonly properties: {
    readonly changeNumber: number;
    readonly region: string;
    readonly platform: "Azure";
    readonly systemService: "AzureContainerRegistry";
    readonly addressPrefixes: readonly string[];
  };
}

export interface RebuiltFile {
  readonly changeNumber: number;
  readonly cloud: "Public";
  readonly values: readonly RebuiltTag[];
}

/** One weekly publication. */
export interface Publication {
  /** Position in the history, 0 = the first (January 2021). */
  readonly index: number;
  /** The file-name date, `YYYYMMDD`. Four dates were published twice (Microsoft replaced the file). */
  readonly label: string;
  readonly labelSource: string;
  readonly firstSeen: string;
  readonly file: RebuiltFile;
  /** `ServiceTags_Public_<label>.json` */
  readonly fileName: string;
}

export function loadAcrHistory(path: string = fixturePath("servicetags", HISTORY_FIXTURE)): AcrHistory {
  const parsed = historySchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `${path} is not an ACR history file: ${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}.`,
    );
  }
  return parsed.data;
}

interface MutableTag {
  region: string;
  changeNumber: number;
  prefixes: Set<string>;
  /** The prefixes in file order, kept until the tag changes (most tags do not change in a week). */
  sorted: readonly string[] | undefined;
}

/**
 * Applies the deltas in order. Every delta is checked against the state it applies to (the old
 * changeNumber, the prefixes it removes, the tags it adds or removes), so a damaged history fails
 * here, naming the publication, rather than as a confusing replay result.
 */
export function rebuildPublications(history: AcrHistory): Publication[] {
  const [base, ...rest] = history.versions;
  if (base?.full === undefined)
    throw new Error("The first version of the ACR history must carry the full state ('full').");
  const state = new Map<string, MutableTag>();
  for (const [name, tag] of Object.entries(base.full)) {
    state.set(name, {
      region: tag.region,
      changeNumber: tag.changeNumber,
      prefixes: new Set(tag.addressPrefixes),
      sorted: undefined,
    });
  }
  const publications: Publication[] = [snapshot(0, base, state)];
  for (const version of rest) {
    const fail = (message: string): never => {
      throw new Error(`ACR history ${version.label} (changeNumber ${version.changeNumber}): ${message}`);
    };
    if (version.full !== undefined) fail("only the first version may carry a full state");
    for (const [name, change] of Object.entries(version.changes ?? {})) {
      const current = state.get(name);
      if ("removed_tag" in change) {
        if (current === undefined) fail(`tag ${name} is removed but is not present`);
        state.delete(name);
      } else if ("new_tag" in change) {
        if (current !== undefined) fail(`tag ${name} is new but is already present`);
        state.set(name, {
          region: change.region,
          changeNumber: change.changeNumber,
          prefixes: new Set(change.addressPrefixes),
          sorted: undefined,
        });
      } else {
        if (current === undefined) return fail(`tag ${name} changes but is not present`);
        const [from, to] = change.changeNumber;
        if (current.changeNumber !== from)
          fail(`tag ${name} changes from changeNumber ${from}, but it is at ${current.changeNumber}`);
        for (const prefix of change.removed)
          if (!current.prefixes.delete(prefix)) fail(`tag ${name} loses ${prefix}, which it does not hold`);
        for (const prefix of change.added) {
          if (current.prefixes.has(prefix)) fail(`tag ${name} gains ${prefix}, which it already holds`);
          current.prefixes.add(prefix);
        }
        current.changeNumber = to;
        current.sorted = undefined;
      }
    }
    publications.push(snapshot(publications.length, version, state));
  }
  return publications;
}

function snapshot(
  index: number,
  version: AcrHistory["versions"][number],
  state: ReadonlyMap<string, MutableTag>,
): Publication {
  const values: RebuiltTag[] = [...state.keys()].sort(compareText).map((name) => {
    const tag = state.get(name) as MutableTag;
    tag.sorted ??= sortPrefixTexts([...tag.prefixes]);
    return {
      name,
      id: name,
      properties: {
        changeNumber: tag.changeNumber,
        region: tag.region,
        platform: "Azure",
        systemService: "AzureContainerRegistry",
        addressPrefixes: tag.sorted,
      },
    };
  });
  return {
    index,
    label: version.label,
    labelSource: version.label_source,
    firstSeen: version.first_seen_utc_date,
    file: { changeNumber: version.changeNumber, cloud: "Public", values },
    fileName: `ServiceTags_Public_${version.label}.json`,
  };
}

/** The publication's file as Microsoft formats it (CRLF, 2-space indent, no trailing newline). */
export function publicationText(publication: Publication): string {
  return JSON.stringify(publication.file, null, 2).replace(/\n/g, "\r\n");
}

/** The IPv4 prefixes of `AzureContainerRegistry.<region>` for each region, or undefined for a region without a tag. */
export function regionalIpv4(file: RebuiltFile, region: string): string[] | undefined {
  const tag = file.values.find(
    (value) => value.name.toLowerCase() === `azurecontainerregistry.${region.toLowerCase()}`,
  );
  return tag?.properties.addressPrefixes.filter((prefix) => !prefix.includes(":"));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** IPv4 before IPv6; each family by network address, then by length. */
export function comparePrefixText(a: string, b: string): number {
  return compareKeys(prefixKey(a), prefixKey(b));
}

/** `comparePrefixText` order, each key computed once. */
export function sortPrefixTexts(texts: readonly string[]): string[] {
  return texts
    .map((text) => ({ text, key: prefixKey(text) }))
    .sort((a, b) => compareKeys(a.key, b.key))
    .map((entry) => entry.text);
}

function compareKeys(left: ReturnType<typeof prefixKey>, right: ReturnType<typeof prefixKey>): number {
  if (left.family !== right.family) return left.family - right.family;
  if (left.address !== right.address) return left.address < right.address ? -1 : 1;
  return left.length - right.length;
}

function prefixKey(text: string): { family: number; address: bigint; length: number } {
  const [address = "", length = "0"] = text.split("/");
  if (!address.includes(":")) {
    const value = address.split(".").reduce((sum, octet) => sum * 256n + BigInt(Number(octet)), 0n);
    return { family: 4, address: value, length: Number(length) };
  }
  return { family: 6, address: ipv6Value(address), length: Number(length) };
}

function ipv6Value(address: string): bigint {
  const [head = "", tail] = address.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...new Array<string>(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  return groups.reduce((sum, group) => sum * 65536n + BigInt(parseInt(group, 16)), 0n);
}
