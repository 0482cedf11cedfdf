import { z } from "zod";
import { ConfigError } from "../errors.js";
import { ARM_ENDPOINTS } from "../registry/clouds.js";
import { parsePrefix } from "../prefixes/ipv4.js";
import { blobServiceUriForAccount } from "./storage-endpoints.js";
import { parseRegistryId } from "../registry/resource-id.js";
import type { RegistryRef } from "../registry/types.js";
import { explicitSourceProblem } from "../servicetags/explicit-source.js";
import { DEPLOYMENT_CLOUDS, type DeploymentCloud } from "../servicetags/schema.js";

/**
 * Every app setting the service reads, in one place. The README table, the infra's app settings
 * and the CLI flags are all checked against this list by tests.
 */
export interface AppSettingInfo {
  readonly name: string;
  readonly required: boolean;
  readonly default?: string;
  readonly example: string;
  readonly description: string;
  /** The CLI flag that sets it, when there is one. */
  readonly flag?: string;
  /** False for settings the platform or the operator sets, not the infra template. */
  readonly setByInfra?: boolean;
  /**
   * A boolean setting: exactly `true` or `false` in any letter case, nothing else. The infra passes
   * these from `bool` parameters (ARM's `string(true)` is `True`), so both sides share this one rule.
   */
  readonly boolean?: true;
}

export const APP_SETTINGS: readonly AppSettingInfo[] = [
  {
    name: "TARGET_REGISTRIES",
    // Required unless TARGET_DISCOVERY_TAG finds the registries (checked in loadSettings).
    required: false,
    example: "/subscriptions/<sub>/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg",
    description:
      'Registries to keep in sync (required unless TARGET_DISCOVERY_TAG is set; these win over discovered ones): ARM resource IDs, comma-separated, or a JSON list of {"id", "regions"?, "includeReplicas"?, "pinnedRules"?, "headroom"?, "minPrefixLength"?, "maxExtraAddresses"?, "maxExtraRatio"?, "maxRemovalShare"?, "writeWhenDefaultAllow"?}.',
    flag: "--registry",
  },
  {
    name: "TARGET_DISCOVERY_TAG",
    required: false,
    example: "acr-allowlist-sync=enabled",
    description:
      "Discovery (off when empty): also sync every Premium registry carrying this tag (key=value; key case-insensitive, value case-insensitive), found with one Azure Resource Graph query. Per-registry tags acr-allowlist-sync.regions, .headroom, .include-replicas, .pinned-rules override the defaults.",
    flag: "--discovery-tag",
  },
  {
    name: "TARGET_DISCOVERY_SCOPES",
    required: false,
    example: "/subscriptions/<sub>,/providers/Microsoft.Management/managementGroups/platform",
    description:
      "Where discovery looks: comma-separated /subscriptions/<id> or /providers/Microsoft.Management/managementGroups/<id> (default: every subscription the identity can read).",
    flag: "--discovery-scopes",
  },
  {
    name: "SYNC_FANOUT",
    required: false,
    default: "false",
    example: "true",
    description:
      "Timer as scheduler: store the service-tags file in blob storage and enqueue one message per registry on the allowlist-sync queue, each synced by its own queue-triggered invocation (false: every registry in the timer's own invocation).",
  },
  {
    name: "SYNC_MAX_PER_SUBSCRIPTION",
    required: false,
    default: "4",
    example: "8",
    description:
      "Registries of one subscription synced at the same time by one process (ARM throttles per subscription: 250 reads, refill 25/s).",
    flag: "--max-per-subscription",
  },
  {
    name: "SERVICE_TAGS_CLOUD",
    required: false,
    default: "Public",
    example: "China",
    description:
      "Cloud of the service-tags file: Public, AzureGovernment or China. Also picks the default ARM endpoint.",
    flag: "--cloud",
  },
  {
    name: "SERVICE_TAGS_URL",
    required: false,
    example: "https://download.microsoft.com/.../ServiceTags_Public_20251020.json",
    description:
      "Explicit service-tags source (https URL or readable local file): when set it is the only source, the Download Center page, the _Latest alias and the Discovery API are not asked.",
    flag: "--service-tags",
  },
  {
    name: "SERVICE_TAGS_DETAILS_URL",
    required: false,
    example: "https://www.microsoft.com/en-us/download/details.aspx?id=56519",
    description: "Download Center details page to find the weekly file on (default: the page of the configured cloud).",
    flag: "--details-page",
  },
  {
    name: "SERVICE_TAGS_LATEST_URL",
    required: false,
    example:
      "https://download.microsoft.com/download/7/1/D/71D86715-5596-4529-9B13-DA13A5DE5B63/ServiceTags_Public_Latest.json",
    description: "The undocumented _Latest alias, tried last (default: the Public alias; none for other clouds).",
    flag: "--latest-url",
  },
  {
    name: "SERVICE_TAGS_TIMEOUT_MS",
    required: false,
    default: "30000",
    example: "60000",
    description: "Time limit for one download, body included.",
    flag: "--source-timeout-ms",
  },
  {
    name: "SERVICE_TAGS_MAX_BYTES",
    required: false,
    default: "20971520",
    example: "31457280",
    description: "Size cap for a downloaded file (the full Public file is ~4.5 MB).",
    flag: "--source-max-bytes",
  },
  {
    name: "SERVICE_TAGS_RETRIES",
    required: false,
    default: "2",
    example: "3",
    description: "Retries per source for transient failures (network, 5xx, 429, timeout).",
    flag: "--source-retries",
  },
  {
    name: "SERVICE_TAGS_MIN_ACR_TAGS",
    required: false,
    default: "3",
    example: "20",
    description: "Sanity bound: a file with fewer AzureContainerRegistry.* tags is refused.",
    flag: "--min-acr-tags",
  },
  {
    name: "SERVICE_TAGS_API_ENABLED",
    required: false,
    default: "true",
    example: "false",
    description:
      "Read the Service Tag Discovery API (ARM) to cross-check the file and as the source after the _Latest alias. Ignored when SERVICE_TAGS_URL is set.",
    setByInfra: false,
  },
  {
    name: "SERVICE_TAGS_API_SUBSCRIPTION",
    required: false,
    example: "00000000-0000-0000-0000-000000000000",
    description:
      "Subscription the Discovery API is read through (default: the first target registry's); the identity needs Microsoft.Network/locations/serviceTags/read on it.",
    flag: "--api-subscription",
  },
  {
    name: "SERVICE_TAGS_API_LOCATION",
    required: false,
    example: "westeurope",
    description:
      "ARM location the Discovery API is asked at, a version reference and not a filter (default: the first target's first region, else its registry's location).",
    flag: "--api-location",
    setByInfra: false,
  },
  {
    name: "SERVICE_TAGS_MAX_AGE_DAYS",
    required: false,
    default: "14",
    example: "7",
    description:
      "The last-good copy (kept next to the ledger) is used when every live source fails only while it was retrieved fewer than this many days ago.",
    flag: "--max-copy-age-days",
    setByInfra: false,
  },
  {
    name: "SERVICE_TAGS_CACHE_SECONDS",
    required: false,
    default: "600",
    example: "0",
    description:
      "A fetched service-tags document is reused for this long by the same process (concurrent runs share one download); 0 turns the cache off.",
    setByInfra: false,
  },
  {
    name: "SYNC_SCHEDULE",
    required: false,
    default: "0 0 3 * * *",
    example: "0 30 */6 * * *",
    description:
      "NCRONTAB schedule (with seconds) of the timer function, always in UTC (Flex Consumption has no WEBSITE_TIME_ZONE).",
  },
  {
    name: "SYNC_REGIONS",
    required: false,
    example: "eastus,westeurope",
    description: "Regions whose AzureContainerRegistry.<Region> tags to allow (default: the registry's own location).",
    flag: "--regions",
  },
  {
    name: "SYNC_INCLUDE_REPLICAS",
    required: false,
    default: "false",
    example: "true",
    description:
      "Also allow the tags of the registry's geo-replica locations (true or false). Needs replications/read, which the infra grants only when its syncIncludeReplicas parameter is true.",
    flag: "--include-replicas",
    boolean: true,
  },
  {
    name: "SYNC_PINNED_RULES",
    required: false,
    example: "203.0.113.10,198.51.100.0/24",
    description: "IPv4 rules the service always keeps present (and owns).",
    flag: "--pinned-rules",
  },
  {
    name: "SYNC_HEADROOM",
    required: false,
    default: "5",
    example: "10",
    description: "Rules kept free below the limit, so people can still add rules by hand.",
    flag: "--headroom",
  },
  {
    name: "SYNC_MIN_PREFIX_LENGTH",
    required: false,
    default: "16",
    example: "12",
    description: "Aggregation never emits a prefix shorter than this (/16 = 65,536 addresses).",
    flag: "--min-prefix-length",
  },
  {
    name: "SYNC_MAX_EXTRA_ADDRESSES",
    required: false,
    example: "1048576",
    description: "Cap on addresses admitted beyond the published ranges; the run stops with a guard error above it.",
    flag: "--max-extra-addresses",
  },
  {
    name: "SYNC_MAX_EXTRA_RATIO",
    required: false,
    example: "4",
    description: "Cap on extra addresses as a multiple of the published address count.",
    flag: "--max-extra-ratio",
  },
  {
    name: "SYNC_MAX_REMOVAL_SHARE",
    required: false,
    default: "0.25",
    example: "0.5",
    description:
      "A plan that revokes more than this share of the owned rules (at least one rule is always allowed) stops unless forced.",
    flag: "--max-removal-share",
  },
  {
    name: "SYNC_WRITE_WHEN_DEFAULT_ALLOW",
    required: false,
    default: "false",
    example: "true",
    description:
      "Write rules even while defaultAction is Allow (true or false; they have no effect until the firewall is turned on).",
    flag: "--write-when-default-allow",
    boolean: true,
  },
  {
    name: "SYNC_OPERATION_TIMEOUT_MS",
    required: false,
    default: "600000",
    example: "900000",
    description: "Deadline for the registry's long-running update.",
    flag: "--operation-timeout-ms",
  },
  {
    name: "SYNC_LOCK_WAIT_MS",
    required: false,
    default: "30000",
    example: "60000",
    description: "How long a run waits for another run's lock on the same registry.",
    flag: "--lock-wait-ms",
  },
  {
    name: "SYNC_DEADLINE_MS",
    required: false,
    default: "540000",
    example: "300000",
    description:
      "Time budget of one timer (or CLI, or queue) invocation, shared by the download, the lock waits and every registry; when it runs out the run stops, reports DeadlineExceeded and flushes telemetry. Keep it at least 30 s below host.json functionTimeout (10 min).",
  },
  {
    name: "SYNC_HTTP_DEADLINE_MS",
    required: false,
    default: "200000",
    example: "120000",
    description:
      "Time budget of one GET /api/plan call; at most 215000, because Flex Consumption cuts an HTTP response at 230 s whatever the timeout.",
  },
  {
    name: "ARM_ENDPOINT",
    required: false,
    example: "https://management.chinacloudapi.cn",
    description: "Azure Resource Manager endpoint (default: the cloud's).",
    flag: "--arm-endpoint",
  },
  {
    name: "ARM_API_VERSION",
    required: false,
    example: "2023-07-01",
    description:
      "api-version of the registry API (default: the SDK's, 2025-11-01). When ARM answers that a version is not supported, the run retries once with 2023-07-01 (same networkRuleSet shape) and warns in the plan.",
    flag: "--arm-api-version",
  },
  {
    name: "LEDGER_CONTAINER",
    required: false,
    default: "acr-allowlist-sync",
    example: "allowlist-ledger",
    description: "Blob container (in AzureWebJobsStorage) that holds ledgers, audit entries and locks.",
  },
  {
    name: "AzureWebJobsStorage",
    required: false,
    example: "UseDevelopmentStorage=true",
    description:
      "Storage connection string (local runs with Azurite). In Azure the identity-based AzureWebJobsStorage__blobServiceUri is used instead.",
    setByInfra: false,
  },
  {
    name: "AzureWebJobsStorage__blobServiceUri",
    required: false,
    example: "https://mystorage.blob.core.windows.net",
    description: "Blob endpoint for identity-based storage access (set by the infra).",
  },
  {
    name: "AzureWebJobsStorage__queueServiceUri",
    required: false,
    example: "https://mystorage.queue.core.windows.net",
    description: "Queue endpoint for identity-based access: the fan-out queue and its trigger (set by the infra).",
  },
  {
    name: "AzureWebJobsStorage__accountName",
    required: false,
    example: "mystorage",
    description:
      "Storage account name for identity-based access, as the official Flex samples set it; the blob endpoint is derived with the cloud's storage suffix. __blobServiceUri wins when both are set.",
    setByInfra: false,
  },
  {
    name: "AzureWebJobsStorage__clientId",
    required: false,
    example: "00000000-0000-0000-0000-000000000000",
    description:
      "Client ID of the user-assigned identity for host storage; the ledger uses the same identity (default: AZURE_CLIENT_ID).",
  },
  {
    name: "WEBSITE_TIME_ZONE",
    required: false,
    example: "(leave unset)",
    description:
      "Must not be set: Flex Consumption does not support it and the timer schedule is UTC; a value is refused so the schedule cannot silently mean another time.",
    setByInfra: false,
  },
  {
    name: "AZURE_CLIENT_ID",
    required: false,
    example: "00000000-0000-0000-0000-000000000000",
    description: "Client ID of the user-assigned managed identity used for ARM, storage and telemetry.",
  },
  {
    name: "APPLICATIONINSIGHTS_CONNECTION_STRING",
    required: false,
    example: "InstrumentationKey=...;IngestionEndpoint=https://...",
    description: "Application Insights connection string; without it nothing is sent.",
  },
  {
    name: "GRANT_MY_IP_URL",
    required: false,
    default: "https://api.ipify.org",
    example: "https://ifconfig.me/ip",
    description:
      "HTTPS endpoint that 'grant' asks for this machine's public IPv4 address when the address given is 'me' (plain text, or JSON with an 'ip' field).",
    flag: "--my-ip-url",
    // Only the CLI's grant command reads it; the function app never makes grants.
    setByInfra: false,
  },
  {
    name: "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    required: false,
    example: "ClientId=<client id>;Authorization=AAD",
    description:
      "Entra ID ingestion, as the Functions host reads it: with Authorization=AAD telemetry is sent with a token for the cloud's Azure Monitor audience (AADAudience in the connection string, else the cloud's); without it, with the instrumentation key only. The infra sets it in the public cloud only, where Entra ingestion is documented.",
  },
  {
    name: "CANARY_REGISTRIES",
    required: false,
    example: "/subscriptions/<sub>/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/canaryjpe",
    description:
      "Dedicated canary registries (recommended: one small Premium registry per region, firewall on), comma-separated resource IDs. Each is kept in sync exactly like a target and runs the ACR Tasks canary after each applied change and on CANARY_SCHEDULE.",
  },
  {
    name: "CANARY_ON_TARGETS",
    required: false,
    example: "/subscriptions/<sub>/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg",
    description:
      "Opt-in: targets (from TARGET_REGISTRIES, comma-separated) that run the canary on themselves. Their identity then needs the right to run tasks, which can push images.",
  },
  {
    name: "CANARY_SCHEDULE",
    required: false,
    default: "0 30 */6 * * *",
    example: "0 15 * * * *",
    description: "NCRONTAB schedule (with seconds) of the canary timer function.",
  },
  {
    name: "CANARY_PROPAGATION_DELAY_MS",
    required: false,
    default: "180000",
    example: "300000",
    description:
      "Wait after ARM reports an applied change before the canary runs: new IP rules take a few minutes to take effect.",
  },
  {
    name: "CANARY_DEADLINE_MS",
    required: false,
    default: "240000",
    example: "600000",
    description: "How long a canary waits for its run to end (scheduling included) before reporting it inconclusive.",
    flag: "--canary-deadline-ms",
  },
  {
    name: "CANARY_POLL_INTERVAL_MS",
    required: false,
    default: "5000",
    example: "10000",
    description: "How often a canary reads its run while waiting for it to end (one ARM read each time).",
  },
];

export interface SyncPolicy {
  readonly headroom: number;
  readonly minPrefixLength: number;
  readonly maxExtraAddresses: number | undefined;
  readonly maxExtraRatio: number | undefined;
  readonly maxRemovalShare: number;
  readonly writeWhenDefaultAllow: boolean;
}

/** `dedicated`: a canary registry of CANARY_REGISTRIES; `target`: a target that opted in (CANARY_ON_TARGETS). */
export type CanaryMode = "dedicated" | "target";

export interface CanarySettings {
  readonly schedule: string;
  readonly propagationDelayMs: number;
  readonly deadlineMs: number;
  readonly pollIntervalMs: number;
}

export interface TargetConfig {
  readonly ref: RegistryRef;
  /** Explicit regions; undefined means "the registry's own location". */
  readonly regions: readonly string[] | undefined;
  /**
   * Where the explicit regions come from, for the message of an unknown one: `SYNC_REGIONS`,
   * `TARGET_REGISTRIES`, or the registry's tag `acr-allowlist-sync.regions` (then only that registry fails).
   */
  readonly regionsFrom?: string | undefined;
  readonly includeReplicas: boolean;
  readonly pinnedRules: readonly string[];
  readonly policy: SyncPolicy;
  /** Whether (and why) the ACR Tasks canary runs on this registry; undefined: it does not. */
  readonly canary?: CanaryMode | undefined;
}

/** A Resource Graph scope: a subscription or a management group. */
export type DiscoveryScope =
  { readonly kind: "subscription"; readonly id: string } | { readonly kind: "managementGroup"; readonly id: string };

export interface DiscoverySettings {
  /** The tag that selects registries; undefined: discovery is off. */
  readonly tag: { readonly key: string; readonly value: string } | undefined;
  /** Empty: every subscription the identity can read. */
  readonly scopes: readonly DiscoveryScope[];
}

/** What a registry gets when neither TARGET_REGISTRIES nor its own tags say otherwise. */
export interface TargetDefaults {
  readonly regions: readonly string[] | undefined;
  readonly includeReplicas: boolean;
  readonly pinnedRules: readonly string[];
  readonly policy: SyncPolicy;
}

export interface Settings {
  /** The explicit targets (TARGET_REGISTRIES); discovery adds more at run time. */
  readonly targets: readonly TargetConfig[];
  readonly targetDefaults: TargetDefaults;
  readonly discovery: DiscoverySettings;
  readonly fanout: boolean;
  readonly maxPerSubscription: number;
  readonly cloud: DeploymentCloud;
  readonly armEndpoint: string;
  /** `ARM_API_VERSION`; undefined: the SDK's. */
  readonly armApiVersion: string | undefined;
  readonly schedule: string;
  readonly serviceTags: {
    readonly url: string | undefined;
    readonly detailsPageUrl: string | undefined;
    readonly latestAliasUrl: string | undefined;
    readonly timeoutMs: number;
    readonly maxBytes: number;
    readonly retries: number;
    readonly minAcrTags: number;
    readonly apiEnabled: boolean;
    readonly apiSubscription: string | undefined;
    readonly apiLocation: string | undefined;
    readonly maxAgeDays: number;
    readonly cacheSeconds: number;
  };
  readonly operationTimeoutMs: number;
  readonly lockWaitMs: number;
  /** Budget of a timer, CLI or queue invocation (`SYNC_DEADLINE_MS`). */
  readonly deadlineMs: number;
  /** Budget of an HTTP dry run (`SYNC_HTTP_DEADLINE_MS`), below the 230 s response limit. */
  readonly httpDeadlineMs: number;
  readonly ledgerContainer: string;
  readonly storage: {
    readonly connectionString: string | undefined;
    readonly blobServiceUri: string | undefined;
    readonly queueServiceUri?: string | undefined;
    /** `AzureWebJobsStorage__accountName`: the blob endpoint is derived from it when no URI is given. */
    readonly accountName: string | undefined;
    /** `AzureWebJobsStorage__clientId`: the identity for the ledger (else AZURE_CLIENT_ID). */
    readonly clientId: string | undefined;
  };
  readonly azureClientId: string | undefined;
  readonly appInsightsConnectionString: string | undefined;
  readonly grants: { readonly myIpUrl: string };
  /** Entra ID ingestion (`APPLICATIONINSIGHTS_AUTHENTICATION_STRING` with Authorization=AAD); undefined: instrumentation key only. */
  readonly appInsightsEntra: { readonly clientId: string | undefined } | undefined;
  readonly canary: CanarySettings;
}

export type SettingsSource = Readonly<Record<string, string | undefined>>;

// ---- value schemas (strings in, typed values out) ----------------------------------------------

const blankToUndefined = (value: unknown): unknown =>
  typeof value === "string" && value.trim() === "" ? undefined : typeof value === "string" ? value.trim() : value;

const intSetting = (min: number, max: number) =>
  z.preprocess(blankToUndefined, z.coerce.number({ error: "expected a whole number" }).int().min(min).max(max));
const numberSetting = (min: number, max: number) =>
  z.preprocess(blankToUndefined, z.coerce.number({ error: "expected a number" }).min(min).max(max));
/**
 * The one rule for boolean settings: `true` or `false`, any letter case (ARM's `string(true)` is
 * `True`). `1`, `yes` and the like are refused rather than guessed, because the infra decides the
 * custom role's actions from the same value and must never read it differently from the code.
 */
export function parseBooleanSetting(value: string): boolean | undefined {
  const normalized = value.trim().toLowerCase();
  return normalized === "true" ? true : normalized === "false" ? false : undefined;
}
const boolSetting = z.preprocess(
  blankToUndefined,
  z
    .string()
    .refine((v) => parseBooleanSetting(v) !== undefined, { error: "expected true or false (any letter case)" })
    .transform((v) => parseBooleanSetting(v) === true),
);
const httpsUrl = z.url({ protocol: /^https$/, error: "expected an https URL" });
const listSetting = z.preprocess(
  blankToUndefined,
  z.string().transform((v) =>
    v
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== ""),
  ),
);
const regionName = z.string().regex(/^[a-z0-9]{2,40}$/i, "expected an ARM location like eastus");
const ruleText = z
  .string()
  .regex(/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/, "expected an IPv4 address or CIDR like 203.0.113.0/24");

// ARM tag names exclude < > % & \\ ? /; quotes are excluded here too, since the tag goes into a KQL string literal.
const TAG_PART = /^[^<>%&\\?/'"=,\s][^<>%&\\?/'"=,]{0,254}$/;
const discoveryTag = z.preprocess(
  blankToUndefined,
  z
    .string()
    .transform((v, ctx) => {
      const at = v.indexOf("=");
      const key = v.slice(0, at).trim();
      const value = v.slice(at + 1).trim();
      if (at < 0 || !TAG_PART.test(key) || !TAG_PART.test(value)) {
        ctx.addIssue({
          code: "custom",
          message: "expected key=value (no quotes, <, >, %, &, \\, ?, / or commas), like acr-allowlist-sync=enabled",
        });
        return z.NEVER;
      }
      return { key, value };
    })
    .optional(),
);
const SUBSCRIPTION_SCOPE = /^\/subscriptions\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/?$/i;
const MANAGEMENT_GROUP_SCOPE = /^\/providers\/Microsoft\.Management\/managementGroups\/([\w().-]{1,90})\/?$/i;
const discoveryScopes = listSetting.pipe(
  z.array(
    z.string().transform((v, ctx): DiscoveryScope => {
      const subscription = SUBSCRIPTION_SCOPE.exec(v)?.[1];
      if (subscription !== undefined) return { kind: "subscription", id: subscription.toLowerCase() };
      const group = MANAGEMENT_GROUP_SCOPE.exec(v)?.[1];
      if (group !== undefined) return { kind: "managementGroup", id: group };
      ctx.addIssue({
        code: "custom",
        message: `'${v.slice(0, 200)}' is neither /subscriptions/<id> nor /providers/Microsoft.Management/managementGroups/<id>`,
      });
      return z.NEVER;
    }),
  ),
);

const policyOverridesSchema = z.strictObject({
  id: z.string(),
  regions: z.array(regionName).min(1).optional(),
  includeReplicas: z.boolean().optional(),
  pinnedRules: z.array(ruleText).optional(),
  headroom: z.number().int().min(0).max(1000).optional(),
  minPrefixLength: z.number().int().min(0).max(32).optional(),
  maxExtraAddresses: z.number().int().min(0).optional(),
  maxExtraRatio: z.number().min(0).optional(),
  maxRemovalShare: z.number().min(0).max(1).optional(),
  writeWhenDefaultAllow: z.boolean().optional(),
});
type TargetOverrides = z.infer<typeof policyOverridesSchema>;
/** The per-registry values without the ID: what a fan-out message carries for its registry. */
export const TARGET_OVERRIDES_SCHEMA = policyOverridesSchema.omit({ id: true });

const settingsSchema = z.object({
  TARGET_DISCOVERY_TAG: discoveryTag,
  TARGET_DISCOVERY_SCOPES: discoveryScopes.optional(),
  SYNC_FANOUT: boolSetting.default(false),
  SYNC_MAX_PER_SUBSCRIPTION: intSetting(1, 100).default(4),
  SERVICE_TAGS_CLOUD: z.preprocess(blankToUndefined, z.enum(DEPLOYMENT_CLOUDS).default("Public")),
  SERVICE_TAGS_URL: z.preprocess(
    blankToUndefined,
    z
      .string()
      .superRefine((value, context) => {
        const problem = explicitSourceProblem(value);
        if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
      })
      .optional(),
  ),
  SERVICE_TAGS_DETAILS_URL: z.preprocess(blankToUndefined, httpsUrl.optional()),
  SERVICE_TAGS_LATEST_URL: z.preprocess(blankToUndefined, httpsUrl.optional()),
  SERVICE_TAGS_TIMEOUT_MS: intSetting(100, 600_000).default(30_000),
  SERVICE_TAGS_MAX_BYTES: intSetting(1024, 512 * 1024 * 1024).default(20 * 1024 * 1024),
  SERVICE_TAGS_RETRIES: intSetting(0, 10).default(2),
  SERVICE_TAGS_MIN_ACR_TAGS: intSetting(0, 10_000).default(3),
  SERVICE_TAGS_API_ENABLED: boolSetting.default(true),
  SERVICE_TAGS_API_SUBSCRIPTION: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "expected a subscription ID (a GUID)")
      .optional(),
  ),
  SERVICE_TAGS_API_LOCATION: z.preprocess(blankToUndefined, regionName.optional()),
  SERVICE_TAGS_MAX_AGE_DAYS: intSetting(1, 365).default(14),
  SERVICE_TAGS_CACHE_SECONDS: intSetting(0, 86_400).default(600),
  SYNC_SCHEDULE: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^(\S+\s+){5}\S+$/, "expected an NCRONTAB expression with six fields (seconds first)")
      .default("0 0 3 * * *"),
  ),
  SYNC_REGIONS: listSetting.pipe(z.array(regionName)).optional(),
  SYNC_INCLUDE_REPLICAS: boolSetting.default(false),
  SYNC_PINNED_RULES: listSetting.pipe(z.array(ruleText)).optional(),
  SYNC_HEADROOM: intSetting(0, 1000).default(5),
  SYNC_MIN_PREFIX_LENGTH: intSetting(0, 32).default(16),
  SYNC_MAX_EXTRA_ADDRESSES: intSetting(0, 2 ** 32).optional(),
  SYNC_MAX_EXTRA_RATIO: numberSetting(0, 1e9).optional(),
  SYNC_MAX_REMOVAL_SHARE: numberSetting(0, 1).default(0.25),
  SYNC_WRITE_WHEN_DEFAULT_ALLOW: boolSetting.default(false),
  SYNC_OPERATION_TIMEOUT_MS: intSetting(1_000, 3_600_000).default(600_000),
  SYNC_LOCK_WAIT_MS: intSetting(0, 600_000).default(30_000),
  SYNC_DEADLINE_MS: intSetting(1_000, 3_600_000).default(540_000),
  // 230 s is the HTTP response limit; 15 s stay for the telemetry flush.
  SYNC_HTTP_DEADLINE_MS: intSetting(1_000, 215_000).default(200_000),
  ARM_API_VERSION: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}(-preview)?$/, "expected an api-version like 2023-07-01")
      .optional(),
  ),
  ARM_ENDPOINT: z.preprocess(
    blankToUndefined,
    z.url({ protocol: /^https$/, error: "expected an https URL (the SDK refuses tokens over http)" }).optional(),
  ),
  LEDGER_CONTAINER: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(
        /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/,
        "expected a blob container name (3-63 lowercase letters, digits, single hyphens)",
      )
      .default("acr-allowlist-sync"),
  ),
  AzureWebJobsStorage: z.preprocess(blankToUndefined, z.string().optional()),
  AzureWebJobsStorage__blobServiceUri: z.preprocess(blankToUndefined, z.url().optional()),
  AzureWebJobsStorage__queueServiceUri: z.preprocess(blankToUndefined, z.url().optional()),
  AzureWebJobsStorage__accountName: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^[a-z0-9]{3,24}$/, "expected a storage account name (3-24 lowercase letters and digits)")
      .optional(),
  ),
  AzureWebJobsStorage__clientId: z.preprocess(
    blankToUndefined,
    z.guid({ error: "expected a client ID (GUID)" }).optional(),
  ),
  WEBSITE_TIME_ZONE: z.preprocess(
    blankToUndefined,
    z.undefined({
      error:
        "Flex Consumption does not support time zones; remove it and write SYNC_SCHEDULE in UTC (03:00 in Tokyo is 0 0 18 * * *)",
    }),
  ),
  AZURE_CLIENT_ID: z.preprocess(blankToUndefined, z.string().optional()),
  APPLICATIONINSIGHTS_CONNECTION_STRING: z.preprocess(blankToUndefined, z.string().optional()),
  GRANT_MY_IP_URL: z.preprocess(blankToUndefined, httpsUrl.default("https://api.ipify.org")),
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: z.preprocess(
    blankToUndefined,
    z
      .string()
      .transform((value, context) => {
        const fields = new Map(
          value
            .split(";")
            .map((part) => part.trim())
            .filter((part) => part !== "")
            .map((part) => {
              const eq = part.indexOf("=");
              return [part.slice(0, eq).trim().toLowerCase(), eq < 0 ? "" : part.slice(eq + 1).trim()] as const;
            }),
        );
        const authorization = fields.get("authorization");
        const clientId = fields.get("clientid");
        if (authorization?.toLowerCase() !== "aad") {
          context.addIssue({ code: "custom", message: "expected Authorization=AAD (optionally with ClientId=<guid>)" });
          return z.NEVER;
        }
        if (clientId !== undefined && !/^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$/i.test(clientId)) {
          context.addIssue({ code: "custom", message: "ClientId must be a client ID (GUID)" });
          return z.NEVER;
        }
        return { clientId };
      })
      .optional(),
  ),
  CANARY_REGISTRIES: listSetting.optional(),
  CANARY_ON_TARGETS: listSetting.optional(),
  CANARY_SCHEDULE: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^(\S+\s+){5}\S+$/, "expected an NCRONTAB expression with six fields (seconds first)")
      .default("0 30 */6 * * *"),
  ),
  CANARY_PROPAGATION_DELAY_MS: intSetting(0, 600_000).default(180_000),
  CANARY_DEADLINE_MS: intSetting(1_000, 1_800_000).default(240_000),
  CANARY_POLL_INTERVAL_MS: intSetting(10, 60_000).default(5_000),
});

function configErrorFor(setting: string, problem: string, value: string | undefined): ConfigError {
  const info = APP_SETTINGS.find((s) => s.name === setting);
  const where = info?.flag === undefined ? setting : `${setting} (${info.flag})`;
  return new ConfigError(`Setting ${where} is invalid: ${problem}.`, {
    details: {
      setting,
      ...(value === undefined || /CONNECTION_STRING|^AzureWebJobsStorage/.test(setting) ? {} : { value }),
    },
    remedy: info === undefined ? "Fix the setting." : `Example: ${info.example}.`,
  });
}

/** Reads and validates every setting; the first invalid one fails with a message that names it. */
export function loadSettings(source: SettingsSource): Settings {
  const picked: Record<string, string | undefined> = {};
  for (const info of APP_SETTINGS) picked[info.name] = source[info.name];
  const parsed = settingsSchema.safeParse(picked);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const setting = String(issue?.path[0] ?? "settings");
    throw configErrorFor(setting, issue?.message ?? "invalid", source[setting]);
  }
  const s = parsed.data;
  const cloud = s.SERVICE_TAGS_CLOUD;
  const targetDefaults: TargetDefaults = {
    regions: s.SYNC_REGIONS?.map((r) => r.toLowerCase()),
    includeReplicas: s.SYNC_INCLUDE_REPLICAS,
    pinnedRules: s.SYNC_PINNED_RULES ?? [],
    policy: {
      headroom: s.SYNC_HEADROOM,
      minPrefixLength: s.SYNC_MIN_PREFIX_LENGTH,
      maxExtraAddresses: s.SYNC_MAX_EXTRA_ADDRESSES,
      maxExtraRatio: s.SYNC_MAX_EXTRA_RATIO,
      maxRemovalShare: s.SYNC_MAX_REMOVAL_SHARE,
      writeWhenDefaultAllow: s.SYNC_WRITE_WHEN_DEFAULT_ALLOW,
    },
  };
  const discovering = s.TARGET_DISCOVERY_TAG !== undefined;
  const entries =
    discovering && (source.TARGET_REGISTRIES ?? "").trim() === "" ? [] : parseTargets(source.TARGET_REGISTRIES);
  const configured = entries.map((overrides) =>
    targetFrom(parseRegistryId(overrides.id, "TARGET_REGISTRIES"), overrides, targetDefaults),
  );
  for (const [index, target] of configured.entries())
    checkPinnedRules(target, entries[index]?.pinnedRules !== undefined);
  // Discovered registries get the defaults: checked even when TARGET_REGISTRIES lists no registry.
  if (discovering) {
    for (const rule of targetDefaults.pinnedRules) {
      const problem = pinnedRuleProblem(rule, targetDefaults.policy.minPrefixLength);
      if (problem !== undefined) throw configErrorFor("SYNC_PINNED_RULES", problem, rule);
    }
  }
  const ids = new Set<string>();
  for (const target of configured) {
    const key = target.ref.id.toLowerCase();
    if (ids.has(key)) throw configErrorFor("TARGET_REGISTRIES", `registry ${target.ref.id} is listed twice`, undefined);
    ids.add(key);
  }
  const targets = withCanaries(configured, s.CANARY_REGISTRIES ?? [], s.CANARY_ON_TARGETS ?? [], (ref) =>
    targetFrom(ref, {}, targetDefaults),
  );
  return {
    targets,
    targetDefaults,
    discovery: { tag: s.TARGET_DISCOVERY_TAG, scopes: s.TARGET_DISCOVERY_SCOPES ?? [] },
    fanout: s.SYNC_FANOUT,
    maxPerSubscription: s.SYNC_MAX_PER_SUBSCRIPTION,
    cloud,
    armApiVersion: s.ARM_API_VERSION,
    armEndpoint: (s.ARM_ENDPOINT ?? ARM_ENDPOINTS[cloud]).replace(/\/+$/, ""),
    schedule: s.SYNC_SCHEDULE,
    serviceTags: {
      url: s.SERVICE_TAGS_URL,
      detailsPageUrl: s.SERVICE_TAGS_DETAILS_URL,
      latestAliasUrl: s.SERVICE_TAGS_LATEST_URL,
      timeoutMs: s.SERVICE_TAGS_TIMEOUT_MS,
      maxBytes: s.SERVICE_TAGS_MAX_BYTES,
      retries: s.SERVICE_TAGS_RETRIES,
      minAcrTags: s.SERVICE_TAGS_MIN_ACR_TAGS,
      apiEnabled: s.SERVICE_TAGS_API_ENABLED,
      apiSubscription: s.SERVICE_TAGS_API_SUBSCRIPTION,
      apiLocation: s.SERVICE_TAGS_API_LOCATION?.toLowerCase(),
      maxAgeDays: s.SERVICE_TAGS_MAX_AGE_DAYS,
      cacheSeconds: s.SERVICE_TAGS_CACHE_SECONDS,
    },
    operationTimeoutMs: s.SYNC_OPERATION_TIMEOUT_MS,
    lockWaitMs: s.SYNC_LOCK_WAIT_MS,
    deadlineMs: s.SYNC_DEADLINE_MS,
    httpDeadlineMs: s.SYNC_HTTP_DEADLINE_MS,
    ledgerContainer: s.LEDGER_CONTAINER,
    storage: {
      connectionString: s.AzureWebJobsStorage,
      blobServiceUri:
        s.AzureWebJobsStorage__blobServiceUri ??
        (s.AzureWebJobsStorage__accountName === undefined
          ? undefined
          : blobServiceUriForAccount(s.AzureWebJobsStorage__accountName, cloud)),
      accountName: s.AzureWebJobsStorage__accountName,
      clientId: s.AzureWebJobsStorage__clientId,
      queueServiceUri: s.AzureWebJobsStorage__queueServiceUri,
    },
    azureClientId: s.AZURE_CLIENT_ID,
    appInsightsConnectionString: s.APPLICATIONINSIGHTS_CONNECTION_STRING,
    grants: { myIpUrl: s.GRANT_MY_IP_URL },
    appInsightsEntra: s.APPLICATIONINSIGHTS_AUTHENTICATION_STRING,
    canary: {
      schedule: s.CANARY_SCHEDULE,
      propagationDelayMs: s.CANARY_PROPAGATION_DELAY_MS,
      deadlineMs: s.CANARY_DEADLINE_MS,
      pollIntervalMs: s.CANARY_POLL_INTERVAL_MS,
    },
  };
}

/**
 * A pinned rule is kept present and owned whatever the source says, so a wrong one is a wide-open
 * door: an invalid address, host bits set (which of the two did they mean?) or a prefix wider than
 * the aggregation floor (`0.0.0.0/0` on a Deny registry) is a configuration error at start.
 */
function checkPinnedRules(target: TargetConfig, fromTargetEntry: boolean): void {
  const setting = fromTargetEntry ? "TARGET_REGISTRIES" : "SYNC_PINNED_RULES";
  const where = fromTargetEntry ? `pinnedRules of ${target.ref.name}: ` : "";
  for (const rule of target.pinnedRules) {
    const problem = pinnedRuleProblem(rule, target.policy.minPrefixLength);
    if (problem !== undefined) throw configErrorFor(setting, `${where}${problem}`, rule);
  }
}

/**
 * What is wrong with a pinned rule, or undefined: the one rule for SYNC_PINNED_RULES, a
 * TARGET_REGISTRIES entry's `pinnedRules` and a discovered registry's `acr-allowlist-sync.pinned-rules` tag.
 */
export function pinnedRuleProblem(rule: string, minPrefixLength: number): string | undefined {
  let length: number;
  try {
    length = parsePrefix(rule, { mode: "strict" }).prefix.length;
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/\.$/, "") : String(error);
    return `pinned rule '${rule}' is not a valid IPv4 rule (${reason})`;
  }
  if (length < minPrefixLength)
    return `pinned rule '${rule}' is /${length}, wider than SYNC_MIN_PREFIX_LENGTH /${minPrefixLength}: it would admit ${(2 ** (32 - length)).toLocaleString("en-US")} addresses`;
  return undefined;
}

/** Per-registry overrides on top of the defaults: the same rules for TARGET_REGISTRIES entries and for discovery tags. */
export type TargetOverrideValues = Omit<TargetOverrides, "id">;

export function targetFrom(
  ref: RegistryRef,
  overrides: TargetOverrideValues,
  defaults: TargetDefaults,
  /** Where `overrides` come from: `TARGET_REGISTRIES`, or a registry tag (see `TargetConfig.regionsFrom`). */
  overridesFrom = "TARGET_REGISTRIES",
): TargetConfig {
  const regionsFrom =
    overrides.regions !== undefined ? overridesFrom : defaults.regions !== undefined ? "SYNC_REGIONS" : undefined;
  return {
    ref,
    regions: overrides.regions?.map((r) => r.toLowerCase()) ?? defaults.regions,
    ...(regionsFrom === undefined ? {} : { regionsFrom }),
    includeReplicas: overrides.includeReplicas ?? defaults.includeReplicas,
    pinnedRules: overrides.pinnedRules ?? defaults.pinnedRules,
    policy: {
      headroom: overrides.headroom ?? defaults.policy.headroom,
      minPrefixLength: overrides.minPrefixLength ?? defaults.policy.minPrefixLength,
      maxExtraAddresses: overrides.maxExtraAddresses ?? defaults.policy.maxExtraAddresses,
      maxExtraRatio: overrides.maxExtraRatio ?? defaults.policy.maxExtraRatio,
      maxRemovalShare: overrides.maxRemovalShare ?? defaults.policy.maxRemovalShare,
      writeWhenDefaultAllow: overrides.writeWhenDefaultAllow ?? defaults.policy.writeWhenDefaultAllow,
    },
  };
}

/** The schemas of the per-registry values, for validating them from other places (registry tags). */
export const TARGET_VALUE_SCHEMAS = {
  regions: z.array(regionName).min(1),
  includeReplicas: z.boolean(),
  pinnedRules: z.array(ruleText),
  headroom: z.number().int().min(0).max(1000),
} as const;

/**
 * Marks the registries the canary runs on. A dedicated canary registry is synced exactly like a
 * target, so one that is not in TARGET_REGISTRIES is added to the targets (after them); a target
 * runs the canary on itself only when CANARY_ON_TARGETS names it.
 */
function withCanaries(
  configured: readonly TargetConfig[],
  dedicated: readonly string[],
  onTargets: readonly string[],
  toTarget: (ref: RegistryRef) => TargetConfig,
): TargetConfig[] {
  const dedicatedRefs = dedicated.map((id) => parseRegistryId(id, "CANARY_REGISTRIES"));
  const onTargetRefs = onTargets.map((id) => parseRegistryId(id, "CANARY_ON_TARGETS"));
  const key = (id: string) => id.toLowerCase();
  const dedicatedKeys = new Set(dedicatedRefs.map((ref) => key(ref.id)));
  const onTargetKeys = new Set(onTargetRefs.map((ref) => key(ref.id)));
  const configuredKeys = new Set(configured.map((target) => key(target.ref.id)));
  for (const ref of onTargetRefs) {
    if (!configuredKeys.has(key(ref.id)))
      throw configErrorFor("CANARY_ON_TARGETS", `registry ${ref.id} is not in TARGET_REGISTRIES`, undefined);
  }
  const targets = configured.map((target): TargetConfig => {
    const id = key(target.ref.id);
    const canary = dedicatedKeys.has(id) ? "dedicated" : onTargetKeys.has(id) ? "target" : undefined;
    return canary === undefined ? target : { ...target, canary };
  });
  const added = new Set<string>();
  for (const ref of dedicatedRefs) {
    if (configuredKeys.has(key(ref.id)) || added.has(key(ref.id))) continue;
    added.add(key(ref.id));
    targets.push({ ...toTarget(ref), canary: "dedicated" });
  }
  return targets;
}

function parseTargets(raw: string | undefined): TargetOverrides[] {
  const text = raw?.trim() ?? "";
  if (text === "")
    throw configErrorFor(
      "TARGET_REGISTRIES",
      "it is empty; at least one registry resource ID is required unless TARGET_DISCOVERY_TAG is set",
      raw,
    );
  if (!text.startsWith("[")) {
    const ids = text
      .split(",")
      .map((id) => id.trim())
      .filter((id) => id !== "");
    // "," or " , " would otherwise configure no registry at all, and every run would succeed doing nothing.
    if (ids.length === 0)
      throw configErrorFor("TARGET_REGISTRIES", "it lists no registry resource ID; at least one is required", raw);
    return ids.map((id) => ({ id }));
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw configErrorFor("TARGET_REGISTRIES", "it starts with '[' but is not valid JSON", raw);
  }
  const parsed = z
    .array(z.union([z.string(), policyOverridesSchema]))
    .min(1)
    .safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw configErrorFor(
      "TARGET_REGISTRIES",
      `entry ${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`,
      raw,
    );
  }
  return parsed.data.map((entry) => (typeof entry === "string" ? { id: entry } : entry));
}
