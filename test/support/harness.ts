import type { LedgerChoice, Runtime, RuntimeOptions } from "../../src/app/runtime.js";
import { createRuntime } from "../../src/app/runtime.js";
import { startArmEmulator, type ArmEmulator, type ArmEmulatorBehaviour, type RegistrySpec } from "./arm-emulator.js";
import { startIdentityEndpoint, type IdentityEndpoint } from "./identity-endpoint.js";
import { startServiceTagsServer, type ServiceTagsServer, type ServiceTagsServerOptions } from "./servicetags-server.js";

/**
 * Everything one sync needs, real and local: the managed identity endpoint, the HTTPS ARM
 * emulator and the service-tags server. `runtime()` builds the production composition root
 * against them (real SDK, real credential, real source chain, a real ledger store).
 * No test-framework imports: the demo uses it from dist/.
 */
export interface Harness {
  readonly identity: IdentityEndpoint;
  readonly arm: ArmEmulator;
  readonly tags: ServiceTagsServer;
  /** App settings pointing at the local parts; `extra` wins. */
  settings(extra?: Readonly<Record<string, string | undefined>>): Record<string, string | undefined>;
  /** Adds a registry to the emulator; defaults: Premium, firewall on (Deny), japaneast. */
  addRegistry(spec: Partial<RegistrySpec> & { readonly name: string }): string;
  runtime(
    extra: Readonly<Record<string, string | undefined>>,
    options?: {
      readonly ledger?: LedgerChoice;
      readonly tuning?: RuntimeOptions["tuning"];
      readonly fanoutQueueName?: string;
    },
  ): Runtime;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly arm?: ArmEmulatorBehaviour;
  readonly tags?: ServiceTagsServerOptions;
  /** Put IDENTITY_ENDPOINT/IDENTITY_HEADER into process.env (in-process runs). Default true. */
  readonly exportIdentityEnv?: boolean;
}

/** Back-off and polling short enough for tests; the logic under test is unchanged. */
export const FAST_TUNING: NonNullable<RuntimeOptions["tuning"]> = {
  registry: {
    retryOptions: { maxRetries: 2, retryDelayInMs: 5, maxRetryDelayInMs: 20 },
    pollIntervalMs: 5,
    requestTimeoutMs: 2_000,
  },
  serviceTags: { retryDelayMs: 1 },
  canaryPollIntervalMs: 5,
};

export const TEST_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000a1";

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const identity = await startIdentityEndpoint();
  const arm = await startArmEmulator({ acceptToken: identity.tokenValidator(), retryAfterSeconds: 0, ...options.arm });
  const tags = await startServiceTagsServer(options.tags);
  if (options.exportIdentityEnv !== false) Object.assign(process.env, identity.env());
  const settings = (extra: Readonly<Record<string, string | undefined>> = {}) => ({
    ...identity.env(),
    ARM_ENDPOINT: arm.url,
    SERVICE_TAGS_DETAILS_URL: tags.detailsPageUrl("Public"),
    SERVICE_TAGS_LATEST_URL: tags.latestAliasUrl,
    SERVICE_TAGS_TIMEOUT_MS: "5000",
    SERVICE_TAGS_RETRIES: "1",
    SYNC_LOCK_WAIT_MS: "2000",
    SYNC_OPERATION_TIMEOUT_MS: "5000",
    // The harness registries live in japaneast; a fixed location saves the registry read that finds it.
    SERVICE_TAGS_API_LOCATION: "japaneast",
    // Most tests change the files between runs of one runtime; the cache has its own tests.
    SERVICE_TAGS_CACHE_SECONDS: "0",
    // No propagation wait for the canary after an applied change: the emulator applies rules at once.
    CANARY_PROPAGATION_DELAY_MS: "0",
    ...extra,
  });
  return {
    identity,
    arm,
    tags,
    settings,
    addRegistry: (spec) =>
      arm.addRegistry({
        subscriptionId: TEST_SUBSCRIPTION,
        resourceGroup: "rg-acr",
        location: "japaneast",
        sku: "Premium",
        defaultAction: "Deny",
        publicNetworkAccess: "Enabled",
        networkRuleBypassOptions: "AzureServices",
        networkRuleBypassAllowedForTasks: true,
        ...spec,
      }),
    runtime: (extra, runtimeOptions = {}) =>
      createRuntime(settings(extra), {
        ledger: runtimeOptions.ledger,
        tuning: runtimeOptions.tuning ?? FAST_TUNING,
        fanoutQueueName: runtimeOptions.fanoutQueueName,
      }),
    close: async () => {
      await Promise.all([arm.close(), tags.close(), identity.close()]);
    },
  };
}
