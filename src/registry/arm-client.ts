import {
  ContainerRegistryManagementClient,
  type ContainerRegistryManagementClientOptionalParams,
} from "@azure/arm-containerregistry";
import type { TokenCredential } from "@azure/identity";
import type { DeploymentCloud } from "../servicetags/schema.js";
import { apiVersionPolicy, type ApiVersionState } from "./api-version.js";
import { ARM_ENDPOINTS } from "./clouds.js";
import type { ThrottleGate } from "./throttle.js";

export interface ArmRetryOptions {
  /** Retries per HTTP request (SDK default 3). */
  readonly maxRetries?: number;
  /** First delay of the exponential backoff for 408/5xx and connection errors (SDK default 1000 ms). */
  readonly retryDelayInMs?: number;
  /** Cap of that backoff (SDK default 64 s). */
  readonly maxRetryDelayInMs?: number;
}

export interface ArmClientOptions {
  readonly credential: TokenCredential;
  /** Picks the default endpoint and the token audience (default `Public`). */
  readonly cloud?: DeploymentCloud;
  /** ARM endpoint (default: the cloud's). The token audience stays the cloud's, so a proxy or emulator works. */
  readonly endpoint?: string;
  readonly retryOptions?: ArmRetryOptions;
  /** Time limit of one HTTP attempt (default 30 s); an attempt past it fails and is not retried. */
  readonly requestTimeoutMs?: number;
  readonly userAgentPrefix?: string;
  /** CA certificates (PEM) that REPLACE the public CA list: only for a local emulator (else use NODE_EXTRA_CA_CERTS). */
  readonly trustedCa?: string | Buffer;
  /** The registry API version to send, and where a fallback is recorded (see api-version.ts). */
  readonly apiVersionState?: ApiVersionState;
  /** Shared by every client of a process, so one 429 pauses the whole subscription (see throttle.ts). */
  readonly throttleGate?: ThrottleGate;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * Builds the SDK client. The scope is set explicitly: the SDK's default (`<endpoint>/.default`)
 * is wrong for any endpoint that is not the audience itself, and the SDK's own cloud table ends
 * URLs with a slash, which would give `...//.default`.
 */
export function createArmClient(subscriptionId: string, options: ArmClientOptions): ContainerRegistryManagementClient {
  const audience = ARM_ENDPOINTS[options.cloud ?? "Public"];
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const clientOptions: ContainerRegistryManagementClientOptionalParams = {
    endpoint: (options.endpoint ?? audience).replace(/\/+$/, ""),
    credentials: { scopes: [`${audience}/.default`] },
    retryOptions: { ...options.retryOptions },
    additionalPolicies: [
      {
        // The SDK sets no timeout, and the LRO poller's requests carry none of the caller's
        // request options: this policy gives every attempt (PATCH, polls, GETs) one.
        policy: {
          name: "acrAllowlistSyncRequestTimeout",
          sendRequest: (request, next) => {
            if (!(request.timeout > 0)) request.timeout = requestTimeoutMs;
            return next(request);
          },
        },
        position: "perRetry",
      },
      ...(options.apiVersionState === undefined
        ? []
        : [{ policy: apiVersionPolicy(options.apiVersionState), position: "perCall" as const }]),
      ...(options.throttleGate === undefined
        ? []
        : [{ policy: options.throttleGate.policy, position: "perRetry" as const }]),
    ],
    ...(options.userAgentPrefix === undefined
      ? {}
      : { userAgentOptions: { userAgentPrefix: options.userAgentPrefix } }),
    ...(options.trustedCa === undefined ? {} : { tlsOptions: { ca: options.trustedCa } }),
  };
  return new ContainerRegistryManagementClient(options.credential, subscriptionId, clientOptions);
}
