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

/** Where a validated file came from, recorded in plans, audit entries and telemetry. */
export interface ServiceTagsOrigin {
  /** "explicit", "details-page" or "latest-alias" (or "file" for a local path). */
  readonly kind: "explicit" | "file" | "details-page" | "latest-alias";
  /** The URL or local path that was read. */
  readonly location: string;
  /** The file name, e.g. `ServiceTags_Public_20251020.json`. */
  readonly fileName: string;
  readonly changeNumber: number;
  readonly cloud: Cloud;
  readonly retrievedAt: string;
  readonly bytes: number;
}

export interface ServiceTagsDocument {
  readonly file: ServiceTagsFile;
  readonly origin: ServiceTagsOrigin;
}
