import type { PipelinePolicy } from "@azure/core-rest-pipeline";

/**
 * The registry API version. `@azure/arm-containerregistry` 12 always sends 2025-11-01 and has no
 * option to change it, and sovereign clouds get new versions late: a pipeline policy sets the
 * configured version (`ARM_API_VERSION`), and when ARM answers that the version is not supported
 * (`NoRegisteredProviderFound` / `InvalidApiVersionParameter`) it retries once with 2023-07-01,
 * a GA version whose `networkRuleSet` has the same shape (azure-facts §7). The fallback sticks
 * for the client's life and is reported as a plan warning.
 */

export const SDK_API_VERSION = "2025-11-01";
export const FALLBACK_API_VERSION = "2023-07-01";
const UNSUPPORTED_VERSION_CODES = new Set(["NoRegisteredProviderFound", "InvalidApiVersionParameter"]);

export interface ApiVersionFallback {
  readonly from: string;
  readonly to: string;
  readonly armCode: string;
}

export interface ApiVersionState {
  /** `ARM_API_VERSION`, or undefined for the SDK's own. */
  readonly requested: string | undefined;
  /** Set once ARM refused the version and the fallback answered instead. */
  fallback: ApiVersionFallback | undefined;
}

export function createApiVersionState(requested: string | undefined): ApiVersionState {
  return { requested, fallback: undefined };
}

/** The version requests are sent with now. */
export function currentApiVersion(state: ApiVersionState): string {
  return state.fallback?.to ?? state.requested ?? SDK_API_VERSION;
}

export function apiVersionPolicy(state: ApiVersionState): PipelinePolicy {
  const ours = (version: string | undefined): boolean =>
    version === SDK_API_VERSION || version === state.requested || version === FALLBACK_API_VERSION;
  return {
    name: "acrAllowlistSyncApiVersion",
    async sendRequest(request, next) {
      // Only registry API calls: the canary's Tasks calls share the pipeline with their own preview version.
      if (!ours(versionOf(request.url))) return next(request);
      const version = currentApiVersion(state);
      request.url = withVersion(request.url, version);
      const response = await next(request);
      if (response.status !== 400 || version === FALLBACK_API_VERSION) return response;
      const armCode = armErrorCode(response.bodyAsText);
      if (armCode === undefined || !UNSUPPORTED_VERSION_CODES.has(armCode)) return response;
      state.fallback = { from: version, to: FALLBACK_API_VERSION, armCode };
      request.url = withVersion(request.url, FALLBACK_API_VERSION);
      return next(request);
    },
  };
}

function versionOf(url: string): string | undefined {
  const match = /[?&]api-version=([^&#]*)/.exec(url);
  return match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
}

/** Replaces the parameter in place: rebuilding the query would re-encode `$skipToken` and friends. */
function withVersion(url: string, version: string): string {
  return url.replace(/([?&]api-version=)[^&#]*/, `$1${encodeURIComponent(version)}`);
}

function armErrorCode(body: string | null | undefined): string | undefined {
  if (body === undefined || body === null || body === "") return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    const code = (parsed as { error?: { code?: unknown } } | null)?.error?.code;
    return typeof code === "string" ? code : undefined;
  } catch {
    return undefined;
  }
}
