import { ResourceGraphClient, type ResourceGraphClientOptionalParams } from "@azure/arm-resourcegraph";
import type { TokenCredential } from "@azure/identity";
import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import { DiscoveryError } from "../errors.js";
import type { ArmRetryOptions } from "../registry/arm-client.js";
import { ARM_ENDPOINTS } from "../registry/clouds.js";
import type { ThrottleGate } from "../registry/throttle.js";
import type { DeploymentCloud } from "../servicetags/schema.js";
import { discoveryQuery, parseResetsAfter, scopeRequests } from "./query.js";
import type { DiscoveredRegistry, DiscoveryRequest, DiscoveryResult, DiscoverySource } from "./types.js";

export interface ResourceGraphSourceOptions {
  readonly credential: TokenCredential;
  readonly cloud: DeploymentCloud;
  /** ARM endpoint (default: the cloud's); the token scope stays the cloud's audience. */
  readonly endpoint?: string;
  readonly retryOptions?: ArmRetryOptions;
  /** Rows per page, 1-1000 (default 1000, the most Resource Graph returns). */
  readonly pageSize?: number;
  /** Longest wait for the quota window to reset before the next page (default 60 s). */
  readonly maxQuotaWaitMs?: number;
  readonly throttleGate?: ThrottleGate;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

// Resource Graph rows: only the projected columns; tags is null for an untagged resource.
const rowSchema = z.object({
  id: z
    .string()
    .regex(
      /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.ContainerRegistry\/registries\/[^/]+$/i,
    ),
  name: z.string(),
  location: z.string(),
  sku: z.string(),
  subscriptionId: z.string(),
  resourceGroup: z.string(),
  tags: z.record(z.string(), z.string()).nullish(),
});
const pageSchema = z.object({ data: z.array(z.unknown()), skipToken: z.string().optional() });
// A runaway skipToken loop would otherwise spend the quota forever.
const MAX_PAGES = 1_000;

/**
 * Discovery through Azure Resource Graph with @azure/arm-resourcegraph: one query per scope kind,
 * paged with `$skipToken` (the SDK calls it `skipToken`). When a page says the per-user quota is
 * spent (`x-ms-user-quota-remaining: 0`), the next page waits for `x-ms-user-quota-resets-after`;
 * a 429 is retried by the SDK after Retry-After, and the shared gate pauses other callers meanwhile.
 */
export function createResourceGraphSource(options: ResourceGraphSourceOptions): DiscoverySource {
  const audience = ARM_ENDPOINTS[options.cloud];
  const endpoint = (options.endpoint ?? audience).replace(/\/+$/, "");
  const pageSize = options.pageSize ?? 1000;
  const maxQuotaWaitMs = options.maxQuotaWaitMs ?? 60_000;
  const sleep =
    options.sleep ??
    ((ms: number, signal?: AbortSignal) => delay(ms, undefined, signal === undefined ? {} : { signal }));
  const clientOptions: ResourceGraphClientOptionalParams = {
    endpoint,
    // arm-resourcegraph 5 keeps the public scope for a custom endpoint or cloudSetting (azure-facts §8).
    credentials: { scopes: [`${audience}/.default`] },
    retryOptions: { ...options.retryOptions },
    ...(options.throttleGate === undefined
      ? {}
      : { additionalPolicies: [{ policy: options.throttleGate.policy, position: "perRetry" as const }] }),
  };
  let client: ResourceGraphClient | undefined;

  return {
    async discover(request: DiscoveryRequest, callOptions: { signal?: AbortSignal } = {}): Promise<DiscoveryResult> {
      client ??= new ResourceGraphClient(options.credential, clientOptions);
      const query = discoveryQuery(request.tag);
      const byId = new Map<string, DiscoveredRegistry>();
      let requests = 0;
      let quotaWaits = 0;
      const throttledBefore = options.throttleGate?.throttled() ?? 0;
      for (const scope of scopeRequests(request.scopes)) {
        let skipToken: string | undefined;
        for (let page = 0; ; page += 1) {
          if (page >= MAX_PAGES) throw failure(`more than ${MAX_PAGES} pages`, undefined, endpoint);
          let remaining: number | undefined;
          let resetsAfterMs: number | undefined;
          let answer: unknown;
          try {
            requests += 1;
            answer = await client.resources(
              {
                ...scope,
                query,
                options: {
                  top: pageSize,
                  resultFormat: "objectArray",
                  ...(skipToken === undefined ? {} : { skipToken }),
                },
              },
              {
                abortSignal: callOptions.signal,
                onResponse: (response) => {
                  const left = Number(response.headers.get("x-ms-user-quota-remaining") ?? Number.NaN);
                  remaining = Number.isFinite(left) ? left : undefined;
                  resetsAfterMs = parseResetsAfter(response.headers.get("x-ms-user-quota-resets-after"));
                },
              },
            );
          } catch (error) {
            throw failure(undefined, error, endpoint);
          }
          const parsed = pageSchema.safeParse(answer);
          if (!parsed.success) throw failure("the answer has no data array", undefined, endpoint);
          for (const raw of parsed.data.data) {
            const row = rowSchema.safeParse(raw);
            if (!row.success)
              throw failure(
                `a row is not a registry (${row.error.issues[0]?.message ?? "invalid"})`,
                undefined,
                endpoint,
              );
            const { tags, ...rest } = row.data;
            byId.set(rest.id.toLowerCase(), { ...rest, tags: tags ?? {} });
          }
          skipToken = parsed.data.skipToken;
          if (skipToken === undefined || skipToken === "") break;
          if (remaining !== undefined && remaining <= 0 && resetsAfterMs !== undefined) {
            quotaWaits += 1;
            await sleep(Math.min(resetsAfterMs, maxQuotaWaitMs), callOptions.signal);
          }
        }
      }
      return {
        registries: [...byId.values()].sort((a, b) => (a.id.toLowerCase() < b.id.toLowerCase() ? -1 : 1)),
        stats: { requests, throttled: (options.throttleGate?.throttled() ?? 0) - throttledBefore, quotaWaits },
      };
    },
  };
}

function failure(problem: string | undefined, error: unknown, endpoint: string): DiscoveryError {
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode;
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = problem ?? (error instanceof Error ? error.message.slice(0, 300) : String(error));
  const remedy =
    status === 403 || status === 401
      ? "Give the app's identity Reader on each TARGET_DISCOVERY_SCOPES scope (results are filtered by RBAC) and check the tenant."
      : status === 429
        ? "Resource Graph throttled the identity beyond the retries; the next run tries again. Other automation may share the identity's quota."
        : "Check TARGET_DISCOVERY_TAG, TARGET_DISCOVERY_SCOPES and ARM_ENDPOINT; the next run tries again.";
  // The SDK's error carries the request (and its token): only the status, code and message are kept.
  return new DiscoveryError(
    `Discovering registries with Azure Resource Graph at ${endpoint} failed${typeof status === "number" ? ` (${status}${typeof code === "string" ? ` ${code}` : ""})` : ""}: ${message}`,
    {
      details: {
        statusCode: typeof status === "number" ? status : undefined,
        armCode: typeof code === "string" ? code : undefined,
      },
      remedy,
    },
  );
}
