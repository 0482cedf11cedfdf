import { z } from "zod";
import { ConfigError } from "../errors.js";
import { isIPv6Text } from "../prefixes/ipv4.js";
import { CLOUDS } from "../servicetags/schema.js";
import { ACR_TAG, availableAcrRegions } from "../servicetags/select.js";
import { createServiceTagsSource } from "../servicetags/source.js";
import type { ServiceTagsFile } from "../servicetags/schema.js";
import { EXIT_OK, type CliIO, type Subcommand } from "./command.js";
import { flagSpecOf, helpLines, type FlagDoc } from "./flag-docs.js";
import { parseFlags, stringFlag } from "./flags.js";
import { envOf, thousands } from "./output.js";

const NAME = "regions";

const FLAGS: readonly FlagDoc[] = [
  {
    name: "service-tags",
    type: "string",
    value: "url|file",
    help: "The service-tags file (https URL or local path); default SERVICE_TAGS_URL, else the Download Center file.",
  },
  { name: "cloud", type: "string", value: "cloud", help: `SERVICE_TAGS_CLOUD: ${CLOUDS.join(", ")} (default Public).` },
  {
    name: "json",
    type: "boolean",
    help: 'Print {"changeNumber", "cloud", "regions": [{"region", "tag", "changeNumber", "ipv4Prefixes", "ipv6Prefixes"}]}.',
  },
  { name: "help", type: "boolean", short: "h", help: "Print this help." },
];

const USAGE = `Usage: acr-allowlist-sync regions [--service-tags <url|file>] [--cloud <cloud>] [--json]

Lists the regions that have an AzureContainerRegistry.<Region> tag in the service-tags file, with
their prefix counts: the names that SYNC_REGIONS and the region flags of plan, apply and aggregate accept.

${helpLines(FLAGS)}
`;

export interface RegionRow {
  readonly region: string;
  readonly tag: string;
  readonly changeNumber: number;
  readonly ipv4Prefixes: number;
  readonly ipv6Prefixes: number;
}

export function regionRows(file: ServiceTagsFile): RegionRow[] {
  const byName = new Map(file.values.map((tag) => [tag.name.toLowerCase(), tag]));
  return availableAcrRegions(file).flatMap((region) => {
    const tag = byName.get(`${ACR_TAG}.${region}`.toLowerCase());
    if (tag === undefined) return [];
    const ipv6 = tag.properties.addressPrefixes.filter(isIPv6Text).length;
    return [
      {
        region,
        tag: tag.name,
        changeNumber: tag.properties.changeNumber,
        ipv4Prefixes: tag.properties.addressPrefixes.length - ipv6,
        ipv6Prefixes: ipv6,
      },
    ];
  });
}

function nonBlank(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}

async function run(args: readonly string[], io: CliIO): Promise<number> {
  const values = parseFlags(args, flagSpecOf(FLAGS), NAME);
  if (values.help === true) {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  const env = envOf(io);
  const cloudText = stringFlag(values, "cloud") ?? env.SERVICE_TAGS_CLOUD ?? "Public";
  const cloud = z.enum(CLOUDS).safeParse(cloudText.trim() === "" ? "Public" : cloudText.trim());
  if (!cloud.success) {
    throw new ConfigError(`Setting SERVICE_TAGS_CLOUD (--cloud) is invalid: '${cloudText}' is not a cloud.`, {
      details: { setting: "SERVICE_TAGS_CLOUD", value: cloudText },
      remedy: `Use one of ${CLOUDS.join(", ")}.`,
    });
  }
  const explicit = stringFlag(values, "service-tags") ?? nonBlank(env.SERVICE_TAGS_URL);
  const source = createServiceTagsSource({
    cloud: cloud.data,
    serviceTagsUrl: explicit,
    detailsPageUrl: nonBlank(env.SERVICE_TAGS_DETAILS_URL),
    latestAliasUrl: nonBlank(env.SERVICE_TAGS_LATEST_URL),
  });
  const { file, origin } = await source.fetch();
  const rows = regionRows(file);
  if (values.json === true) {
    io.stdout.write(
      JSON.stringify({ changeNumber: file.changeNumber, cloud: file.cloud, regions: rows }, null, 2) + "\n",
    );
    return EXIT_OK;
  }
  const width = Math.max(6, ...rows.map((row) => row.region.length));
  io.stdout.write(
    `${file.cloud} service tags, changeNumber ${file.changeNumber} (${origin.fileName}): ${rows.length} ACR regions\n\n`,
  );
  io.stdout.write(`  ${"REGION".padEnd(width)}  IPV4  IPV6  TAG\n`);
  for (const row of rows) {
    io.stdout.write(
      `  ${row.region.padEnd(width)}  ${thousands(row.ipv4Prefixes).padStart(4)}  ${thousands(row.ipv6Prefixes).padStart(4)}  ${row.tag} (changeNumber ${row.changeNumber})\n`,
    );
  }
  return EXIT_OK;
}

export const regionsCommand: Subcommand = {
  name: NAME,
  summary: "List the regions with an AzureContainerRegistry.<Region> tag and their prefix counts.",
  usage: USAGE,
  run,
};
