import type { ContainerRegistryManagementClient } from "@azure/arm-containerregistry";
import { DEFAULT_REQUEST_TIMEOUT_MS, createArmClient, type ArmClientOptions } from "./arm-client.js";
import { createApiVersionState } from "./api-version.js";
import { ARM_ENDPOINTS } from "./clouds.js";
import { toRegistryError, type ArmOperation, type ErrorContext } from "./arm-errors.js";
import {
  legacyVirtualNetworkRulesFrom,
  parseArm,
  registryDocumentSchema,
  replicationSchema,
  ruleLimitFrom,
  toSnapshot,
  usageListSchema,
} from "./arm-schema.js";
import type {
  RegistryGateway,
  RegistryReadOptions,
  RegistryRef,
  RegistrySnapshot,
  ReplaceIpRulesRequest,
} from "./types.js";

export interface ArmRegistryGatewayOptions extends ArmClientOptions {
  /** Deadline of one long-running update, PATCH and polling included. */
  readonly operationTimeoutMs: number;
  /** Poll interval when ARM sends no (or a zero) Retry-After (SDK default 2 s). */
  readonly pollIntervalMs?: number;
  /** `ARM_API_VERSION`: the registry API version to send (default the SDK's, 2025-11-01). */
  readonly apiVersion?: string | undefined;
}

/**
 * The registry port over Azure Resource Manager: the only code that calls
 * @azure/arm-containerregistry. Retries are the SDK's: 429/503 after Retry-After, 408 and 5xx
 * and connection errors with exponential backoff, `retryOptions.maxRetries` times per request.
 *
 * A 429 without Retry-After is not retried here either: ARM sends Retry-After with every
 * throttling answer, so its absence means something other than ARM's throttling answered, and
 * retrying blind would spend more of the same per-principal budget. The next scheduled run is
 * the retry; the error says so.
 */
export function createArmRegistryGateway(options: ArmRegistryGatewayOptions): RegistryGateway {
  const clients = new Map<string, ContainerRegistryManagementClient>();
  // Shared by every subscription's client: a cloud that refuses the version refuses it everywhere.
  const apiVersionState = createApiVersionState(options.apiVersion);
  const endpoint = options.endpoint ?? ARM_ENDPOINTS[options.cloud ?? "Public"];
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;

  // One client per subscription (the SDK binds it), so the token and connections are reused.
  const clientFor = (ref: RegistryRef): ContainerRegistryManagementClient => {
    let client = clients.get(ref.subscriptionId);
    if (client === undefined) {
      client = createArmClient(ref.subscriptionId, { ...options, apiVersionState });
      clients.set(ref.subscriptionId, client);
    }
    return client;
  };

  async function call<T>(
    ref: RegistryRef,
    operation: ArmOperation,
    signals: Pick<ErrorContext, "callerSignal" | "deadlineSignal">,
    run: () => Promise<T>,
  ): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw toRegistryError(error, {
        ref,
        operation,
        endpoint,
        requestTimeoutMs,
        operationTimeoutMs: options.operationTimeoutMs,
        ...signals,
      });
    }
  }

  /** What a full read adds to the registry document: the rule limit, legacy VNet rules and replicas. */
  async function readLimits(
    ref: RegistryRef,
    client: ContainerRegistryManagementClient,
    sku: string,
    readOptions: RegistryReadOptions,
  ): Promise<
    Pick<RegistrySnapshot, "ruleLimit" | "ruleLimitSource" | "replicaLocations" | "legacyVirtualNetworkRules">
  > {
    const abortSignal = readOptions.signal;
    const signals = { callerSignal: abortSignal };
    const usages = await call(ref, "listUsages", signals, () =>
      client.registries.listUsages(ref.resourceGroup, ref.name, { abortSignal }),
    );
    const usageList = parseArm(usageListSchema, usages, ref, "listUsages");
    const limit = ruleLimitFrom(usageList, ref);
    const legacyVirtualNetworkRules = legacyVirtualNetworkRulesFrom(usageList, ref);
    // Geo-replication is a Premium feature; other SKUs have none to list. Replicas are read only
    // when asked for, so the least-privilege role needs replications/read only then.
    const replicas =
      sku === "Premium" && readOptions.includeReplicas === true
        ? await call(ref, "listReplications", signals, async () => {
            const locations: string[] = [];
            for await (const replica of client.replications.list(ref.resourceGroup, ref.name, { abortSignal })) {
              locations.push(parseArm(replicationSchema, replica, ref, "listReplications").location);
            }
            return locations;
          })
        : [];
    return { ...limit, replicaLocations: replicas, legacyVirtualNetworkRules };
  }

  return {
    async read(ref: RegistryRef, readOptions: RegistryReadOptions = {}): Promise<RegistrySnapshot> {
      const client = clientFor(ref);
      const abortSignal = readOptions.signal;
      const signals = { callerSignal: abortSignal };
      // One call after the other: a missing registry or a refused read stops at the first.
      // ARM's Date header is the run clock of grant expiry (src/grants/clock.ts).
      let armTime: string | undefined;
      const registry = await call(ref, "get", signals, () =>
        client.registries.get(ref.resourceGroup, ref.name, {
          abortSignal,
          onResponse: (response) => {
            armTime = response.headers.get("date") ?? undefined;
          },
        }),
      );
      const document = parseArm(registryDocumentSchema, registry, ref, "get");
      const limits = readOptions.limitsFrom ?? (await readLimits(ref, client, document.sku.name, readOptions));
      const snapshot = {
        ...toSnapshot(ref, document, limits, limits.replicaLocations, limits.legacyVirtualNetworkRules),
        armTime,
      };
      return apiVersionState.fallback === undefined
        ? snapshot
        : { ...snapshot, apiVersionFallback: apiVersionState.fallback };
    },

    async replaceIpRules(
      ref: RegistryRef,
      request: ReplaceIpRulesRequest,
      writeOptions: { signal?: AbortSignal } = {},
    ): Promise<void> {
      const client = clientFor(ref);
      const deadlineSignal = AbortSignal.timeout(options.operationTimeoutMs);
      const callerSignal = writeOptions.signal;
      const abortSignal = callerSignal === undefined ? deadlineSignal : AbortSignal.any([callerSignal, deadlineSignal]);
      await call(ref, "update", { callerSignal, deadlineSignal }, async () => {
        // Only networkRuleSet: the SDK leaves unset properties out of the body, so
        // publicNetworkAccess and the bypass options are never sent, let alone changed.
        const poller = client.registries.update(
          ref.resourceGroup,
          ref.name,
          {
            networkRuleSet: {
              defaultAction: request.defaultAction,
              ipRules: request.ipRules.map((iPAddressOrRange) => ({ action: "Allow", iPAddressOrRange })),
            },
          },
          {
            abortSignal,
            ...(options.pollIntervalMs === undefined ? {} : { updateIntervalInMs: options.pollIntervalMs }),
          },
        );
        // The signal must reach pollUntilDone too: the poller's waits between polls ignore the request's.
        await poller.pollUntilDone({ abortSignal });
      });
    },
  };
}
