import { readFile } from "node:fs/promises";
import { GuardError, TagNotFoundError, UsageError } from "../errors.js";
import { coverOfMerged, MAX_COVER_BUDGET, MAX_COVER_WORK, type ArrayCover } from "../prefixes/cover.js";
import { formatPrefix, IPV4_BITS, type Prefix } from "../prefixes/ipv4.js";
import { parsePrefixBytes } from "../prefixes/list.js";
import { mergePrefixArrays, prefixesOf, type PrefixArrays } from "../prefixes/merge.js";
import { prefixesAsJsonArray } from "../prefixes/format.js";
import { EXIT_OK, type CliIO, type Subcommand } from "./command.js";
import { count as countOf, warn } from "./output.js";
import {
  integerFlag,
  listFlag,
  nonNegativeNumberFlag,
  parseFlags,
  requireFlag,
  stringFlag,
  type FlagSpec,
} from "./flags.js";

const NAME = "aggregate";
const DEFAULT_FLOOR = 16;

const USAGE = `Usage: acr-allowlist-sync aggregate
         (--service-tags FILE (--region R[,R...] | --tag NAME[,NAME...]) | --prefixes-file FILE)
         --max-rules K [--min-prefix-length F] [--max-extra-addresses N] [--max-extra-ratio R] [--json]

Reads IPv4 prefixes, merges them losslessly, and prints at most K prefixes that cover every one of
their addresses with the fewest extra addresses (an exact optimum, not an approximation).

  --service-tags FILE      A Microsoft "Azure IP Ranges and Service Tags" JSON file.
  --region R[,R...]        ARM locations; eastus selects tag AzureContainerRegistry.EastUS.
  --tag NAME[,NAME...]     Tag names, e.g. AzureContainerRegistry (the global tag).
  --prefixes-file FILE     One IPv4 prefix per line instead (# comments, blank lines ignored).
  --max-rules K            The most prefixes to print (1 to ${MAX_COVER_BUDGET}).
  --min-prefix-length F    Never print a prefix shorter than /F (default 16, as SYNC_MIN_PREFIX_LENGTH).
  --max-extra-addresses N  Fail if the best cover admits more than N extra addresses.
  --max-extra-ratio R      Fail if extra addresses exceed R times the target addresses.
  --json                   Print one JSON object: prefixes, inputPrefixes, mergedPrefixes,
                           targetAddresses, extraAddresses, skippedIPv6.

IPv6 prefixes are skipped and counted (registry IP rules are IPv4 only). A cover is refused at
once when its work (merged prefixes × K) is over ${MAX_COVER_WORK.toLocaleString("en-US")}; no cover is computed
when the merged prefixes already fit in K.
`;

const FLAGS: FlagSpec = {
  "service-tags": { type: "string" },
  region: { type: "string" },
  tag: { type: "string" },
  "prefixes-file": { type: "string" },
  "max-rules": { type: "string" },
  "min-prefix-length": { type: "string" },
  "max-extra-addresses": { type: "string" },
  "max-extra-ratio": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
};

/** What the targets were read from, for the human summary. */
interface Targets {
  /** The lossless merge of the targets, in typed arrays: no object per prefix on this path. */
  readonly merged: PrefixArrays;
  readonly inputPrefixes: number;
  readonly skippedIPv6: number;
  readonly origin: string;
}

async function readBytes(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new UsageError(`Cannot read --${flag} file '${path}'${typeof code === "string" ? ` (${code})` : ""}.`, {
      details: { path, flag },
      remedy: "Check the path and that the file is readable.",
    });
  }
}

async function readServiceTagTargets(
  path: string,
  regions: string[] | undefined,
  tagNames: string[] | undefined,
): Promise<Targets> {
  // Loaded here, not at start: zod and the schema are for this path only, not for --prefixes-file or --help.
  const [{ parseServiceTags }, { selectTags }] = await Promise.all([
    import("../servicetags/parse.js"),
    import("../servicetags/select.js"),
  ]);
  const file = parseServiceTags((await readBytes(path, "service-tags")).toString("utf8"), { location: path });
  let selection: ReturnType<typeof selectTags>;
  try {
    selection = selectTags(file, { regions: regions ?? [], tagNames: tagNames ?? [] });
  } catch (error) {
    // In a sync a missing tag is a guard (Microsoft may drop one); here it is what the operator typed.
    if (error instanceof TagNotFoundError)
      throw new UsageError(error.message, { details: error.details, remedy: error.remedy, cause: error });
    throw error;
  }
  // Copied prefix by prefix: spreading a million-prefix tag into push() overflowed the stack.
  const count = selection.tags.reduce((sum, tag) => sum + tag.prefixes.length, 0);
  const bases = new Uint32Array(count);
  const lengths = new Uint8Array(count);
  let at = 0;
  let skippedIPv6 = 0;
  for (const tag of selection.tags) {
    for (const prefix of tag.prefixes) {
      bases[at] = prefix.base;
      lengths[at++] = prefix.length;
    }
    skippedIPv6 += tag.ipv6Count;
  }
  const names = selection.tags.map((tag) => `${tag.name} (changeNumber ${tag.changeNumber})`).join(", ");
  return {
    merged: mergePrefixArrays({ count, bases, lengths }),
    inputPrefixes: count,
    skippedIPv6,
    origin: `${file.cloud} service tags, changeNumber ${file.changeNumber}: ${names}`,
  };
}

async function readPrefixFileTargets(path: string): Promise<Targets> {
  const list = parsePrefixBytes(await readBytes(path, "prefixes-file"), { location: path, mode: "strict" });
  return {
    merged: mergePrefixArrays(list.prefixes),
    inputPrefixes: list.prefixes.count,
    skippedIPv6: list.ipv6Count,
    origin: path,
  };
}

/** Target addresses inside each output prefix (both lists sorted; a merged prefix may span several output prefixes under a floor). */
function targetsPerPrefix(cover: readonly Prefix[], merged: readonly Prefix[]): number[] {
  const counts: number[] = [];
  let m = 0;
  for (const prefix of cover) {
    const start = prefix.base;
    const end = start + 2 ** (IPV4_BITS - prefix.length);
    let inside = 0;
    while (m < merged.length) {
      const leaf = merged[m] as Prefix;
      const leafEnd = leaf.base + 2 ** (IPV4_BITS - leaf.length);
      if (leaf.base >= end) break;
      inside += Math.min(end, leafEnd) - Math.max(start, leaf.base);
      if (leafEnd > end) break;
      m += 1;
    }
    counts.push(inside);
  }
  return counts;
}

function humanSummary(targets: Targets, cover: ArrayCover, budget: number, floor: number): string {
  const number = (value: number): string => value.toLocaleString("en-US");
  const percent =
    cover.targetAddresses === 0
      ? "0"
      : ((100 * cover.extraAddresses) / cover.targetAddresses).toLocaleString("en-US", { maximumFractionDigits: 1 });
  const lines = [
    `Source: ${targets.origin}`,
    `Read ${number(targets.inputPrefixes)} IPv4 prefixes (skipped ${number(targets.skippedIPv6)} IPv6); ${number(cover.mergedPrefixes)} after lossless merge; ${number(cover.targetAddresses)} target addresses.`,
    `Optimal cover: ${number(cover.prefixes.count)} prefixes (budget ${number(budget)}${floor > 0 ? `, none shorter than /${floor}` : ""}), ${number(cover.extraAddresses)} extra addresses (${percent}% of the target).`,
    "",
  ];
  const prefixes = prefixesOf(cover.prefixes);
  const inside = targetsPerPrefix(prefixes, prefixesOf(targets.merged));
  prefixes.forEach((prefix, index) => {
    const extra = 2 ** (IPV4_BITS - prefix.length) - (inside[index] as number);
    lines.push(
      extra === 0 ? `  ${formatPrefix(prefix)}` : `  ${formatPrefix(prefix).padEnd(18)} +${number(extra)} extra`,
    );
  });
  return lines.join("\n") + "\n";
}

async function run(args: readonly string[], io: CliIO): Promise<number> {
  const values = parseFlags(args, FLAGS, NAME);
  if (values.help === true) {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  const serviceTags = stringFlag(values, "service-tags");
  const prefixesFile = stringFlag(values, "prefixes-file");
  const regions = listFlag(values, "region");
  const tagNames = listFlag(values, "tag");
  const budget = requireFlag(integerFlag(values, "max-rules", { min: 1, max: MAX_COVER_BUDGET }), "max-rules", NAME);
  // The sync's default floor: the engine on its own must not broaden more than the sync would.
  const floor = integerFlag(values, "min-prefix-length", { min: 0, max: IPV4_BITS }) ?? DEFAULT_FLOOR;
  const maxExtraAddresses = integerFlag(values, "max-extra-addresses", { min: 0, max: 2 ** IPV4_BITS });
  const maxExtraRatio = nonNegativeNumberFlag(values, "max-extra-ratio");
  const help = { remedy: `Run 'acr-allowlist-sync ${NAME} --help' for the flags it takes.` };

  let targets: Targets;
  if (serviceTags !== undefined && prefixesFile !== undefined) {
    throw new UsageError(`${NAME}: give either --service-tags or --prefixes-file, not both.`, help);
  } else if (serviceTags !== undefined) {
    if (regions === undefined && tagNames === undefined)
      throw new UsageError(`${NAME}: --service-tags needs --region or --tag.`, help);
    targets = await readServiceTagTargets(serviceTags, regions, tagNames);
  } else if (prefixesFile !== undefined) {
    if (regions !== undefined || tagNames !== undefined)
      throw new UsageError(
        `${NAME}: --region and --tag select service tags; they do not apply to --prefixes-file.`,
        help,
      );
    targets = await readPrefixFileTargets(prefixesFile);
  } else {
    throw new UsageError(`${NAME}: give --service-tags FILE with --region or --tag, or --prefixes-file FILE.`, help);
  }

  if (targets.inputPrefixes === 0) {
    throw new GuardError("source-too-small", `${NAME}: no IPv4 prefixes in ${targets.origin}.`, {
      details: { skippedIPv6: targets.skippedIPv6 },
      remedy: "Give a file with at least one IPv4 prefix (one a.b.c.d/n per line; # comments, IPv6 lines skipped).",
    });
  }
  const cover = coverOfMerged(targets.merged, {
    maxPrefixes: budget,
    minPrefixLength: floor,
    ...(maxExtraAddresses === undefined ? {} : { maxExtraAddresses }),
    ...(maxExtraRatio === undefined ? {} : { maxExtraRatio }),
  });
  if (cover.extraAddresses > cover.targetAddresses) {
    warn(
      io.stderr,
      `the cover admits ${countOf(cover.extraAddresses, "extra address", "extra addresses")}, more than the ${countOf(cover.targetAddresses, "target address", "target addresses")}; raise --max-rules or --min-prefix-length to admit fewer.`,
    );
  }
  if (values.json === true) {
    const figures = {
      inputPrefixes: targets.inputPrefixes,
      mergedPrefixes: cover.mergedPrefixes,
      targetAddresses: cover.targetAddresses,
      extraAddresses: cover.extraAddresses,
      skippedIPv6: targets.skippedIPv6,
    };
    // `prefixes` first, formatted into bytes (200k strings through JSON.stringify cost more than the merge).
    io.stdout.write(`{"prefixes":${prefixesAsJsonArray(cover.prefixes)},${JSON.stringify(figures).slice(1)}\n`);
  } else {
    io.stdout.write(humanSummary(targets, cover, budget, floor));
  }
  return EXIT_OK;
}

export const aggregateCommand: Subcommand = {
  name: NAME,
  summary: "Merge IPv4 prefixes and print the optimal cover within a rule budget.",
  usage: USAGE,
  run,
};
