import { z } from "zod";

/**
 * The "Azure IP Ranges and Service Tags" file. Unknown fields are tolerated (Microsoft adds
 * fields now and then); the ones we rely on are checked. The per-tag `changeNumber` is the
 * version key: the top-level one was reused for different content and went backwards.
 */
export const CLOUDS = ["Public", "AzureGovernment", "China", "AzureGermany"] as const;
export type Cloud = (typeof CLOUDS)[number];
/**
 * The clouds one can deploy to and configure. Microsoft Cloud Germany is closed (azure-facts §7):
 * old files may still say `AzureGermany`, but no setting, endpoint or role may name it.
 */
export const DEPLOYMENT_CLOUDS = ["Public", "AzureGovernment", "China"] as const satisfies readonly Cloud[];
export type DeploymentCloud = (typeof DEPLOYMENT_CLOUDS)[number];

export const serviceTagPropertiesSchema = z.looseObject({
  changeNumber: z.number().int().nonnegative(),
  region: z.string(),
  regionId: z.number().int().optional(),
  platform: z.string(),
  systemService: z.string(),
  addressPrefixes: z.array(z.string().min(1).max(64)),
  networkFeatures: z.array(z.string()).nullable().optional(),
});

export const serviceTagSchema = z.looseObject({
  name: z.string().min(1).max(200),
  id: z.string().min(1).max(200),
  properties: serviceTagPropertiesSchema,
});

export const serviceTagsFileSchema = z.looseObject({
  changeNumber: z.number().int().nonnegative(),
  cloud: z.enum(CLOUDS),
  values: z.array(serviceTagSchema),
});

export type ServiceTag = z.infer<typeof serviceTagSchema>;
export type ServiceTagsFile = z.infer<typeof serviceTagsFileSchema>;

/** How `publishedAt` was found, best first. */
export type AgeBasis =
  /** The date in the file name (`ServiceTags_Public_YYYYMMDD.json`, a Monday). */
  | "file-date"
  /** The server's `Last-Modified` (the `_Latest` alias has no date in its name). */
  | "last-modified"
  /** When this process (or the last-good record) first saw the Discovery API's changeNumber: a lower bound of its age. */
  | "first-seen"
  /** Nothing better: the retrieval time. */
  | "retrieved";

/** Where a validated file came from, recorded in plans, audit entries and telemetry. */
export interface ServiceTagsOrigin {
  /**
   * "explicit" (https URL) or "file" (local path) when SERVICE_TAGS_URL is set; otherwise
   * "details-page", "latest-alias", "discovery-api" (the ARM Service Tag Discovery API) or
   * "last-good" (the copy kept from an earlier run, used when every live source failed).
   */
  readonly kind: "explicit" | "file" | "details-page" | "latest-alias" | "discovery-api" | "last-good";
  /** The URL or local path that was read. */
  readonly location: string;
  /** The file name, e.g. `ServiceTags_Public_20251020.json`. */
  readonly fileName: string;
  readonly changeNumber: number;
  readonly cloud: Cloud;
  readonly retrievedAt: string;
  readonly bytes: number;
  /** When the data was published, as well as it can be told (see `ageBasis`). */
  readonly publishedAt?: string | undefined;
  readonly ageBasis?: AgeBasis | undefined;
  /** Days between `publishedAt` and the moment the chain handed the data out, one decimal. */
  readonly dataAgeDays?: number | undefined;
  /** For a last-good copy: the source that first served it. */
  readonly copyOf?: string | undefined;
}

/** A tag whose changeNumber differs between the weekly file and the Discovery API. */
export interface TagLag {
  readonly name: string;
  readonly fileChangeNumber: number;
  readonly apiChangeNumber: number;
  /** Which one the document holds: the higher changeNumber wins. */
  readonly used: "file" | "discovery-api";
}

/** Something about the data every plan made from it should say. */
export interface SourceWarning {
  readonly code: "stale-copy";
  readonly message: string;
}

export interface ServiceTagsDocument {
  readonly file: ServiceTagsFile;
  readonly origin: ServiceTagsOrigin;
  /** Cross-check with the Discovery API: tags whose changeNumbers differ (empty or absent when they agree). */
  readonly lags?: readonly TagLag[] | undefined;
  /** Whether the cross-check ran: undefined when no second source was asked. */
  readonly crossCheck?: { readonly status: "checked" | "unavailable"; readonly detail: string } | undefined;
  readonly warnings?: readonly SourceWarning[] | undefined;
  /** The highest top-level changeNumber any source answered with during this fetch. */
  readonly newestChangeNumberSeen?: number | undefined;
}
