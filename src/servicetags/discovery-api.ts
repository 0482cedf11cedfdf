import { ServiceClient } from "@azure/core-client";
import { createPipelineRequest, isRestError } from "@azure/core-rest-pipeline";
import type { TokenCredential } from "@azure/identity";
import { z } from "zod";
import { ARM_ENDPOINTS } from "../registry/clouds.js";
import {
  CLOUDS,
  serviceTagsFileSchema,
  type DeploymentCloud,
  type ServiceTagsDocument,
  type ServiceTagsFile,
} from "./schema.js";
import { ServiceTagsFetchError } from "./source-errors.js";

/**
 * The Service Tag Discovery API (`Microsoft.Network/locations/{location}/serviceTags`, azure-facts
 * §10), read with the app's identity through the Azure SDK pipeline (token for the cloud's ARM
 * audience, the SDK's retries for 429/5xx). Not @azure/arm-network: its `serviceTags.list` makes one
 * call and ignores `nextLink`. The answer has the file's shape except that changeNumbers are
 * strings; it is mapped into the same validated `ServiceTagsFile`.
 */

export const DISCOVERY_API_VERSION = "2026-01-01";
/** Role action the identity needs on the subscription (least privilege; Reader includes it). */
export const DISCOVERY_API_ACTION = "Microsoft.Network/locations/serviceTags/read";
/** More pages than any real answer has: a server that keeps sending nextLink is cut off. */
const MAX_PAGES = 50;

const changeNumber = z.union([
  z
    .string()
    .regex(/^\d{1,15}$/, "expected a changeNumber of digits")
    .transform(Number),
  z.number().int().nonnegative(),
]);

const apiTagSchema = z.looseObject({
  name: z.string().min(1).max(200),
  id: z.string().min(1).max(200),
  properties: z.looseObject({
    changeNumber,
    region: z.string(),
    regionId: z.number().int().optional(),
    platform: z.string().optional(),
    systemService: z.string(),
    addressPrefixes: z.array(z.string().min(1).max(64)),
    networkFeatures: z.array(z.string()).nullable().optional(),
  }),
});

const apiPageSchema = z.looseObject({
  changeNumber,
  cloud: z.enum(CLOUDS),
  values: z.array(apiTagSchema),
  nextLink: z.string().nullable().optional(),
});

export interface DiscoveryApiOptions {
  readonly credential: TokenCredential;
  /** Picks the token audience; the answer is the cloud of the subscription. */
  readonly cloud: DeploymentCloud;
  /** ARM endpoint (default: the cloud's); the audience stays the cloud's, so an emulator works. */
  readonly endpoint?: string | undefined;
  readonly subscriptionId: string | (() => Promise<string>);
  /** A version reference, not a filter: one fixed location gives stable answers. */
  readonly location: string | (() => Promise<string>);
  readonly timeoutMs: number;
  /** An answer with fewer `AzureContainerRegistry*` tags is refused (the API may hold a subset). Default 1. */
  readonly minAcrTags?: number | undefined;
  readonly retryOptions?: {
    readonly maxRetries?: number;
    readonly retryDelayInMs?: number;
    readonly maxRetryDelayInMs?: number;
  };
  readonly now?: (() => Date) | undefined;
}

export interface DiscoveryApiSource {
  /** Every page, mapped and validated; throws `ServiceTagsFetchError`. */
  fetch(signal?: AbortSignal): Promise<ServiceTagsDocument>;
  /** The URL of the first page (without api-version), once the location is known. */
  describe(): string;
}

export function createDiscoveryApiSource(options: DiscoveryApiOptions): DiscoveryApiSource {
  const audience = ARM_ENDPOINTS[options.cloud];
  const endpoint = (options.endpoint ?? audience).replace(/\/+$/, "");
  const now = options.now ?? (() => new Date());
  const client = new ServiceClient({
    endpoint,
    credential: options.credential,
    // Explicit scope: sovereign clouds need their own audience, and `<endpoint>/.default` is wrong for an emulator.
    credentialScopes: [`${audience}/.default`],
    retryOptions: { ...options.retryOptions },
  });
  let described = `${endpoint}/subscriptions/{subscription}/providers/Microsoft.Network/locations/{location}/serviceTags`;

  const resolve = async (value: string | (() => Promise<string>)): Promise<string> =>
    typeof value === "string" ? value : value();

  return {
    describe: () => described,
    async fetch(signal) {
      let subscription: string;
      let location: string;
      try {
        [subscription, location] = await Promise.all([resolve(options.subscriptionId), resolve(options.location)]);
      } catch (error) {
        throw new ServiceTagsFetchError(
          "http-status",
          `The Discovery API's subscription or location could not be found (${error instanceof Error ? error.message : String(error)}).`,
          {
            cause: error,
            remedy: "Set SERVICE_TAGS_API_SUBSCRIPTION and SERVICE_TAGS_API_LOCATION.",
          },
        );
      }
      const first = `${endpoint}/subscriptions/${encodeURIComponent(subscription)}/providers/Microsoft.Network/locations/${encodeURIComponent(location)}/serviceTags`;
      described = first;
      const values: ServiceTagsFile["values"] = [];
      let head: { changeNumber: number; cloud: (typeof CLOUDS)[number] } | undefined;
      let bytes = 0;
      let url: string | undefined = `${first}?api-version=${DISCOVERY_API_VERSION}`;
      for (let page = 1; url !== undefined; page += 1) {
        if (page > MAX_PAGES) {
          throw new ServiceTagsFetchError("schema", `${first} kept sending nextLink past ${MAX_PAGES} pages.`);
        }
        const text = await get(client, url, first, subscription, options.timeoutMs, signal);
        bytes += Buffer.byteLength(text, "utf8");
        const parsed = parsePage(text, first);
        if (head === undefined) head = { changeNumber: parsed.changeNumber, cloud: parsed.cloud };
        else if (head.changeNumber !== parsed.changeNumber || head.cloud !== parsed.cloud) {
          // The data moved while we paged: the pages would mix two versions.
          throw new ServiceTagsFetchError(
            "schema",
            `${first} changed while paging (changeNumber ${head.changeNumber} then ${parsed.changeNumber}).`,
            { transient: true },
          );
        }
        for (const tag of parsed.values) {
          values.push({
            ...tag,
            properties: { ...tag.properties, platform: tag.properties.platform ?? "Azure" },
          });
        }
        url = nextPage(parsed.nextLink, endpoint, first);
      }
      if (head === undefined) throw new ServiceTagsFetchError("schema", `${first} answered no page.`);
      if (head.cloud !== options.cloud) {
        throw new ServiceTagsFetchError(
          "wrong-cloud",
          `${first} answered the service tags of cloud '${head.cloud}', but '${options.cloud}' is configured.`,
          { remedy: "Read the API through a subscription of the configured cloud (SERVICE_TAGS_API_SUBSCRIPTION)." },
        );
      }
      const file = serviceTagsFileSchema.parse({ changeNumber: head.changeNumber, cloud: head.cloud, values });
      const acrTags = file.values.filter((tag) => /^AzureContainerRegistry(\.|$)/.test(tag.name)).length;
      const minAcrTags = options.minAcrTags ?? 1;
      if (acrTags < minAcrTags) {
        throw new ServiceTagsFetchError(
          "too-few-acr-tags",
          `${first} holds ${acrTags} AzureContainerRegistry tag(s), fewer than the ${minAcrTags} required.`,
          { details: { acrTags, minAcrTags } },
        );
      }
      const retrievedAt = now().toISOString();
      return {
        file,
        origin: {
          kind: "discovery-api",
          location: first,
          fileName: `serviceTags@${location}`,
          changeNumber: file.changeNumber,
          cloud: file.cloud,
          retrievedAt,
          bytes,
        },
      };
    },
  };
}

async function get(
  client: ServiceClient,
  url: string,
  first: string,
  subscription: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<string> {
  let status: number;
  let body: string;
  try {
    const response = await client.sendRequest(
      createPipelineRequest({ url, method: "GET", timeout: timeoutMs, abortSignal: signal }),
    );
    status = response.status;
    body = response.bodyAsText ?? "";
  } catch (error) {
    signal?.throwIfAborted();
    const code = isRestError(error) ? error.code : undefined;
    const timedOut = code === "REQUEST_SEND_ERROR" && /timeout/i.test((error as Error).message);
    throw new ServiceTagsFetchError(
      timedOut ? "timeout" : "network",
      `${first} could not be read (${error instanceof Error ? error.message : String(error)}).`,
      { cause: error, transient: true, ...(code === undefined ? {} : { details: { errorCode: code } }) },
    );
  }
  if (status >= 200 && status < 300) return body;
  const armCode = armErrorCode(body);
  const remedy =
    status === 403
      ? `Grant the app's identity '${DISCOVERY_API_ACTION}' on subscription ${subscription} (the infra does; Reader also has it).`
      : status === 404
        ? "Check SERVICE_TAGS_API_SUBSCRIPTION and SERVICE_TAGS_API_LOCATION (an ARM location such as westeurope)."
        : undefined;
  throw new ServiceTagsFetchError(
    "http-status",
    `${first} answered HTTP ${status}${armCode === undefined ? "" : ` ${armCode}`}.`,
    { status, transient: status === 429 || status >= 500, ...(remedy === undefined ? {} : { remedy }) },
  );
}

function parsePage(text: string, first: string): z.infer<typeof apiPageSchema> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ServiceTagsFetchError("truncated-json", `${first} answered something that is not JSON.`);
  }
  const parsed = apiPageSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ServiceTagsFetchError(
      "schema",
      `${first} does not have the Discovery API schema: ${issues.join("; ")}.`,
      { details: { issues } },
    );
  }
  return parsed.data;
}

/** The bearer token goes wherever nextLink points: only follow https links to the same ARM host. */
function nextPage(nextLink: string | null | undefined, endpoint: string, first: string): string | undefined {
  if (nextLink === undefined || nextLink === null || nextLink === "") return undefined;
  let next: URL;
  try {
    next = new URL(nextLink, endpoint);
  } catch {
    throw new ServiceTagsFetchError("schema", `${first} sent an invalid nextLink.`);
  }
  if (next.protocol !== "https:" || next.host !== new URL(endpoint).host) {
    throw new ServiceTagsFetchError("not-https", `${first} sent a nextLink to ${next.origin}, not to ${endpoint}.`);
  }
  return next.toString();
}

function armErrorCode(body: string): string | undefined {
  try {
    const parsed = z.object({ error: z.object({ code: z.string().max(100) }) }).safeParse(JSON.parse(body));
    return parsed.success ? parsed.data.error.code : undefined;
  } catch {
    return undefined;
  }
}
