import type { ContainerRegistryManagementClientOptionalParams } from "@azure/arm-containerregistry";

// @azure/core-rest-pipeline is not a direct dependency: take its policy type from a client that is.
type PipelinePolicy = NonNullable<
  ContainerRegistryManagementClientOptionalParams["additionalPolicies"]
>[number]["policy"];

/**
 * ARM throttles per subscription and principal (token buckets, azure-facts §9). The SDK retries a
 * 429 after its Retry-After, but only that one request waits: the other registries of the same
 * subscription keep spending the empty bucket and collect 429s of their own until their retries
 * run out. This gate makes a 429 pause every request to that subscription (Resource Graph: to the
 * tenant) until Retry-After has passed, so a thousand registries slow down instead of failing.
 */
export interface ThrottleGate {
  /** Add to a client's `additionalPolicies` with position `perRetry`. */
  readonly policy: PipelinePolicy;
  /** 429 answers seen (each one waited out, then retried by the SDK). */
  readonly throttled: () => number;
}

const SUBSCRIPTION = /\/subscriptions\/([^/?]+)/i;
// ARM's Retry-After is seconds; a value far beyond it means something else answered: cap the pause.
const MAX_PAUSE_MS = 120_000;

export function createThrottleGate(): ThrottleGate {
  const pausedUntil = new Map<string, number>();
  let throttled = 0;
  const keyOf = (url: string): string => SUBSCRIPTION.exec(url)?.[1]?.toLowerCase() ?? "tenant";
  return {
    throttled: () => throttled,
    policy: {
      name: "acrAllowlistSyncThrottleGate",
      async sendRequest(request, next) {
        const key = keyOf(request.url);
        for (;;) {
          const wait = (pausedUntil.get(key) ?? 0) - Date.now();
          if (wait <= 0) break;
          const signal = request.abortSignal;
          if (signal?.aborted === true) break;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(finish, wait);
            function finish(): void {
              clearTimeout(timer);
              signal?.removeEventListener("abort", finish);
              resolve();
            }
            signal?.addEventListener("abort", finish);
          });
        }
        const response = await next(request);
        if (response.status === 429) {
          throttled += 1;
          const seconds = Number(response.headers.get("retry-after"));
          const ms = response.headers.get("retry-after-ms");
          const pause =
            ms !== undefined && Number.isFinite(Number(ms))
              ? Number(ms)
              : Number.isFinite(seconds)
                ? seconds * 1000
                : 0;
          if (pause > 0)
            pausedUntil.set(key, Math.max(pausedUntil.get(key) ?? 0, Date.now() + Math.min(pause, MAX_PAUSE_MS)));
        }
        return response;
      },
    },
  };
}
