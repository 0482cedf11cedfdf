import { dirname, join, resolve as resolvePath } from "node:path";
import { DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import { loadSettings, type Settings, type SettingsSource } from "../config/settings.js";
import { blobContainerFromSettings, createBlobLedgerStore, type BlobLedgerStoreOptions } from "../ledger/blob-store.js";
import { createFileLedgerStore } from "../ledger/file-store.js";
import type { LedgerStore } from "../ledger/types.js";
import { createTasksGateway } from "../canary/tasks-client.js";
import { createBlobCanaryStore, createFileCanaryStore } from "../ledger/canary-store.js";
import { createBlobLastRunStore, createFileLastRunStore } from "../ledger/last-run-store.js";
import type { LastRunStore } from "../sync/last-run.js";
import { createArmRegistryGateway, type ArmRegistryGatewayOptions } from "../registry/arm-gateway.js";
import { createCachedSource } from "../servicetags/cache.js";
import { createSourceChain } from "../servicetags/chain.js";
import { createDiscoveryApiSource, type DiscoveryApiSource } from "../servicetags/discovery-api.js";
import { createLastGoodStore } from "../servicetags/last-good.js";
import { createServiceTagsSource, type ServiceTagsSourceOptions } from "../servicetags/source.js";
import { createBlobStateStore, createFileStateStore, type SourceStateStore } from "../servicetags/state-store.js";
import type { RegistryGateway } from "../registry/types.js";
import type { InvocationPorts } from "../sync/invocation.js";
import { createTelemetry } from "../telemetry/azure-monitor.js";
import { createBlobDiscoveryMemory, createFileDiscoveryMemory, discoveryMemoryName } from "../discovery/memory.js";
import { createResourceGraphSource, type ResourceGraphSourceOptions } from "../discovery/resource-graph.js";
import type { DiscoveryMemory } from "../discovery/types.js";
import { createThrottleGate, type ThrottleGate } from "../registry/throttle.js";
import type { QueueClient } from "@azure/storage-queue";
import { createFanoutQueue, queueClientFromSettings, type FanoutQueue } from "../fanout/queue.js";
import { createFanoutStore, type FanoutStore } from "../fanout/tags-store.js";

/** Settings plus the ports built from them: what every entry point (timer, HTTP, CLI) runs on. */
export interface Runtime {
  readonly settings: Settings;
  readonly ports: InvocationPorts;
  /** Shared by the registry and Resource Graph clients: one 429 pauses its subscription for all. */
  readonly throttleGate: ThrottleGate;
  /** The queue and blobs of SYNC_FANOUT (blob ledger only: they live in the same storage account). */
  readonly fanout: { readonly store: FanoutStore; readonly queue: FanoutQueue } | undefined;
}

export type LedgerChoice = { readonly kind: "blob" } | { readonly kind: "file"; readonly path: string };

export interface RuntimeOptions {
  /** Blob ledger in AzureWebJobsStorage (Functions) or a local file (CLI). Default: blob. */
  readonly ledger?: LedgerChoice;
  /** The fan-out queue (default `allowlist-sync`, what the trigger binds): tests sharing one Azurite use their own. */
  readonly fanoutQueueName?: string;
  /** Default: DefaultAzureCredential (managed identity in Azure, `az login` on a laptop). */
  readonly credential?: TokenCredential;
  /**
   * Timing knobs that are not app settings (retry back-off, poll interval, per-request timeout):
   * the defaults suit Azure; tests against the local emulators shorten them.
   */
  readonly tuning?: {
    readonly registry?: Pick<ArmRegistryGatewayOptions, "retryOptions" | "pollIntervalMs" | "requestTimeoutMs">;
    readonly serviceTags?: Pick<ServiceTagsSourceOptions, "retryDelayMs" | "sleep" | "now">;
    /** Lease length and renewal interval of the blob ledger's lock. */
    readonly ledger?: Pick<BlobLedgerStoreOptions, "leaseSeconds" | "renewEveryMs">;
    readonly discovery?: Pick<ResourceGraphSourceOptions, "retryOptions" | "pageSize" | "sleep" | "maxQuotaWaitMs">;
    /** Between two reads of a canary run (default: CANARY_POLL_INTERVAL_MS). */
    readonly canaryPollIntervalMs?: number;
  };
}

/** The composition root: validates every setting (a bad one fails here, naming it) and wires the edges. */
export function createRuntime(env: SettingsSource, options: RuntimeOptions = {}): Runtime {
  const settings = loadSettings(env);
  const credential =
    options.credential ??
    new DefaultAzureCredential(
      settings.azureClientId === undefined ? {} : { managedIdentityClientId: settings.azureClientId },
    );
  const throttleGate = createThrottleGate();
  const tag = settings.discovery.tag;
  const memoryName = tag === undefined ? undefined : discoveryMemoryName(tag, settings.discovery.scopes);
  let ledger: LedgerStore;
  let runs: LastRunStore;
  let discoveryMemory: DiscoveryMemory | undefined;
  let fanout: Runtime["fanout"];
  // The last-good service-tags copy lives next to the ledger: beside the ledger file, or in the ledger container.
  let stateStore: SourceStateStore;
  if (options.ledger?.kind === "file") {
    ledger = createFileLedgerStore({ path: options.ledger.path });
    runs = createFileLastRunStore(options.ledger.path);
    if (memoryName !== undefined)
      discoveryMemory = createFileDiscoveryMemory(join(dirname(options.ledger.path), memoryName));
    stateStore = createFileStateStore(dirname(resolvePath(options.ledger.path)));
  } else {
    const containerClient = blobContainerFromSettings({
      connectionString: settings.storage.connectionString,
      blobServiceUri: settings.storage.blobServiceUri,
      credential: ledgerCredential(settings, credential, options.credential),
      containerName: settings.ledgerContainer,
    });
    ledger = createBlobLedgerStore({ containerClient, ...options.tuning?.ledger });
    runs = createBlobLastRunStore(containerClient);
    if (memoryName !== undefined) discoveryMemory = createBlobDiscoveryMemory(containerClient, memoryName);
    fanout = {
      store: createFanoutStore(containerClient),
      queue: lazyQueue(() =>
        queueClientFromSettings({
          connectionString: settings.storage.connectionString,
          queueServiceUri: settings.storage.queueServiceUri,
          credential: ledgerCredential(settings, credential, options.credential),
          queueName: options.fanoutQueueName,
        }),
      ),
    };
    stateStore = createBlobStateStore(containerClient);
  }
  const registry = createArmRegistryGateway({
    credential,
    cloud: settings.cloud,
    endpoint: settings.armEndpoint,
    operationTimeoutMs: settings.operationTimeoutMs,
    apiVersion: settings.armApiVersion,
    throttleGate,
    ...options.tuning?.registry,
  });
  const files = createServiceTagsSource({
    cloud: settings.cloud,
    serviceTagsUrl: settings.serviceTags.url,
    detailsPageUrl: settings.serviceTags.detailsPageUrl,
    latestAliasUrl: settings.serviceTags.latestAliasUrl,
    timeoutMs: settings.serviceTags.timeoutMs,
    maxBytes: settings.serviceTags.maxBytes,
    retries: settings.serviceTags.retries,
    minAcrTags: settings.serviceTags.minAcrTags,
    ...options.tuning?.serviceTags,
  });
  const explicit = settings.serviceTags.url !== undefined;
  const chain = createSourceChain({
    cloud: settings.cloud,
    files,
    explicit,
    api:
      explicit || !settings.serviceTags.apiEnabled ? undefined : discoveryApi(settings, credential, registry, options),
    lastGood: explicit ? undefined : createLastGoodStore(stateStore, settings.cloud),
    maxAgeDays: settings.serviceTags.maxAgeDays,
    now: options.tuning?.serviceTags?.now,
  });
  return {
    settings,
    throttleGate,
    fanout,
    ports: {
      discovery: createResourceGraphSource({
        credential,
        cloud: settings.cloud,
        endpoint: settings.armEndpoint,
        throttleGate,
        retryOptions: options.tuning?.registry?.retryOptions,
        ...options.tuning?.discovery,
      }),
      discoveryMemory,
      registry,
      canary: {
        // The canary's ACR Tasks calls ride the same pipeline options (token, retries, timeouts) as the registry's.
        tasks: createTasksGateway({
          credential,
          cloud: settings.cloud,
          endpoint: settings.armEndpoint,
          ...options.tuning?.registry,
        }),
        // The last result of each registry, kept with the ledger.
        results:
          options.ledger?.kind === "file"
            ? createFileCanaryStore(options.ledger.path)
            : createBlobCanaryStore(
                blobContainerFromSettings({
                  connectionString: settings.storage.connectionString,
                  blobServiceUri: settings.storage.blobServiceUri,
                  credential: ledgerCredential(settings, credential, options.credential),
                  containerName: settings.ledgerContainer,
                }),
              ),
        pollIntervalMs: options.tuning?.canaryPollIntervalMs ?? settings.canary.pollIntervalMs,
      },
      ledger,
      runs,
      serviceTags: createCachedSource(chain, { ttlMs: settings.serviceTags.cacheSeconds * 1000 }),
      telemetry: createTelemetry({
        connectionString: settings.appInsightsConnectionString,
        credential: telemetryCredential(settings, credential, options.credential),
        cloud: settings.cloud,
      }),
    },
  };
}

/**
 * The Discovery API source: read through SERVICE_TAGS_API_SUBSCRIPTION (default: the first
 * target's subscription) at SERVICE_TAGS_API_LOCATION (default: the first target's first region,
 * else its registry's location, read once per process).
 */
function discoveryApi(
  settings: Settings,
  credential: TokenCredential,
  registry: RegistryGateway,
  options: RuntimeOptions,
): DiscoveryApiSource | undefined {
  const first = settings.targets[0];
  const subscriptionId = settings.serviceTags.apiSubscription ?? first?.ref.subscriptionId;
  if (subscriptionId === undefined || first === undefined) return undefined;
  let location: Promise<string> | undefined;
  const configured = settings.serviceTags.apiLocation ?? first.regions?.[0];
  return createDiscoveryApiSource({
    credential,
    cloud: settings.cloud,
    endpoint: settings.armEndpoint,
    subscriptionId,
    location:
      configured ??
      (() => {
        location ??= registry.read(first.ref).then(
          (snapshot) => snapshot.location.toLowerCase(),
          (error: unknown) => {
            location = undefined;
            throw error;
          },
        );
        return location;
      }),
    timeoutMs: settings.serviceTags.timeoutMs,
    minAcrTags: settings.serviceTags.minAcrTags,
    retryOptions: options.tuning?.registry?.retryOptions,
    now: options.tuning?.serviceTags?.now,
  });
}

/**
 * The host's storage identity (`AzureWebJobsStorage__clientId`) when it names one, so the ledger
 * reads the same account with the same identity as the host; otherwise the app's credential.
 */
/** The queue client is built at the first send, so a missing queue setting only matters with SYNC_FANOUT. */
function lazyQueue(build: () => QueueClient): FanoutQueue {
  let queue: FanoutQueue | undefined;
  return {
    send: (message) => {
      queue ??= createFanoutQueue(build());
      return queue.send(message);
    },
  };
}

function ledgerCredential(
  settings: Settings,
  appCredential: TokenCredential,
  given: TokenCredential | undefined,
): TokenCredential {
  const clientId = settings.storage.clientId;
  if (given !== undefined || clientId === undefined || clientId === settings.azureClientId) return appCredential;
  return new DefaultAzureCredential({ managedIdentityClientId: clientId });
}

/**
 * Entra ID ingestion only when APPLICATIONINSIGHTS_AUTHENTICATION_STRING asks for it (the same
 * switch the host uses), with the identity it names; otherwise the instrumentation key alone.
 */
function telemetryCredential(
  settings: Settings,
  appCredential: TokenCredential,
  given: TokenCredential | undefined,
): TokenCredential | undefined {
  const entra = settings.appInsightsEntra;
  if (entra === undefined) return undefined;
  if (given !== undefined || entra.clientId === undefined || entra.clientId === settings.azureClientId)
    return appCredential;
  return new DefaultAzureCredential({ managedIdentityClientId: entra.clientId });
}

let shared: Runtime | undefined;

/** One runtime per Functions worker process, shared by the timer and HTTP entry files. */
export function functionsRuntime(): Runtime {
  shared ??= createRuntime(process.env);
  return shared;
}
