import type { TokenCredential } from "@azure/identity";
import { shutdownAzureMonitor, useAzureMonitor, type AzureMonitorOpenTelemetryOptions } from "@azure/monitor-opentelemetry";
import { metrics, type Counter, type Gauge } from "@opentelemetry/api";
import { logs, SeverityNumber, type Logger } from "@opentelemetry/api-logs";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { ConfigError } from "../errors.js";
import { parseConnectionString } from "./connection-string.js";
import { noopTelemetry } from "./noop.js";
import {
  completedMetricPoints,
  completedRecord,
  driftDetectedRecord,
  failedRecord,
  guardTrippedRecord,
  type CustomEventRecord,
  type MetricPoint,
} from "./records.js";
import { METRIC_NAMES, type Telemetry } from "./types.js";

/**
 * The telemetry edge on the Azure Monitor OpenTelemetry distro.
 *
 * `useAzureMonitor()` starts one OpenTelemetry SDK for the whole process and replaces the global
 * providers, so this module starts it at most once and hands out sinks that share it (reference
 * counted): the Functions host loads each entry file once per worker process, and the timer and
 * the HTTP function both call `createTelemetry` with the same settings. A second call with a
 * different connection string fails loudly instead of silently sending to the first resource.
 */

export interface TelemetryOptions {
  /** Without one (undefined or blank) the sink is a no-op. Never read from the environment here: settings decide. */
  readonly connectionString?: string | undefined;
  /**
   * Entra ID authentication for ingestion: required when the Application Insights resource has
   * local authentication disabled (`DisableLocalAuth`), which the infra does. In Azure pass a
   * `ManagedIdentityCredential` for the app's user-assigned identity.
   */
  readonly credential?: TokenCredential | undefined;
  /** `cloud_RoleName` of our rows. Leave unset in Functions: the app name is detected from the platform. */
  readonly cloudRoleName?: string | undefined;
  /**
   * The SDK's own usage telemetry ("statsbeat") that it sends to Microsoft-owned endpoints.
   * Default: the SDK's default (on). Tests and the demo turn it off so that nothing but our
   * envelopes leaves the process. Set before the SDK starts; it stays off for the process.
   */
  readonly sdkStats?: boolean;
  /**
   * Default true: the exporter keeps envelopes it could not send in a temp folder and retries
   * them later. Tests turn it off so a failed export leaves no files behind.
   */
  readonly offlineStorage?: boolean;
  /** Upper bound for `flush()`, so a slow ingestion endpoint cannot hold an invocation open. Default 15 s. */
  readonly flushTimeoutMs?: number;
}

/** Scope name of our logger and meter (shows as `sdkVersion` context, not in customDimensions). */
const INSTRUMENTATION_SCOPE = "acr-allowlist-sync";

/** The log attribute that turns an OpenTelemetry log record into a `customEvents` row. */
const CUSTOM_EVENT_ATTRIBUTE = "microsoft.custom_event.name";

const DEFAULT_FLUSH_TIMEOUT_MS = 15_000;

/** The legacy switch is the one that stops statsbeat entirely (network, long-interval and SDK stats). */
const NO_STATSBEAT_ENV = "APPLICATION_INSIGHTS_NO_STATSBEAT";

interface Flushable {
  forceFlush(): Promise<void>;
}

interface Pipeline {
  readonly key: string;
  refs: number;
  readonly logger: Logger;
  readonly gauges: ReadonlyMap<MetricPoint["name"], Gauge>;
  readonly changes: Counter;
  readonly providers: readonly Flushable[];
}

let pipeline: Pipeline | undefined;

const SEVERITY: Record<CustomEventRecord["severity"], SeverityNumber> = {
  info: SeverityNumber.INFO,
  warn: SeverityNumber.WARN,
  error: SeverityNumber.ERROR,
};

/**
 * Returns a sink that sends to Application Insights, or a no-op sink without a connection string.
 * Throws `ConfigError` for a malformed connection string or when telemetry already runs in this
 * process for another connection string.
 */
export function createTelemetry(options: TelemetryOptions = {}): Telemetry {
  const connectionString = options.connectionString?.trim() ?? "";
  if (connectionString === "") return noopTelemetry();
  parseConnectionString(connectionString);

  const key = JSON.stringify([connectionString, options.cloudRoleName ?? null, options.credential !== undefined]);
  if (pipeline !== undefined && pipeline.key !== key) {
    throw new ConfigError("Application Insights telemetry already runs in this process with a different connection string, role name or authentication.", {
      details: { setting: "APPLICATIONINSIGHTS_CONNECTION_STRING" },
      remedy: "Create telemetry once per process from the settings, or shut the first sink down before creating another.",
    });
  }
  const shared = pipeline ?? startPipeline(connectionString, key, options);
  pipeline = shared;
  shared.refs += 1;
  return new AzureMonitorTelemetry(shared, options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS);
}

function startPipeline(connectionString: string, key: string, options: TelemetryOptions): Pipeline {
  if (options.sdkStats === false) process.env[NO_STATSBEAT_ENV] = "true";
  const distroOptions: AzureMonitorOpenTelemetryOptions = {
    azureMonitorExporterOptions: {
      connectionString,
      ...(options.credential === undefined ? {} : { credential: options.credential }),
      disableOfflineStorage: options.offlineStorage === false,
    },
    // Sampling applies to traces; logs are only dropped when tied to a sampled-out trace. Keep
    // both off so no custom event is ever sampled away (an alert depends on every failure).
    samplingRatio: 1,
    enableTraceBasedSamplingForLogs: false,
    // Live Metrics opens a long-polling connection per instance and standard/performance metrics
    // send rows every minute; the Functions host already reports invocations, CPU and memory.
    enableLiveMetrics: false,
    enableStandardMetrics: false,
    enablePerformanceCounters: false,
    // No auto-instrumentation: http would record every ARM call, token request and download as a
    // dependency row (noise and cost, and URLs could carry a SAS signature), azureSdk would do the
    // same for the ARM and Blob clients, and the database/logger ones have nothing to attach to.
    // Our events carry what an operator needs; the Functions host records the invocation itself.
    instrumentationOptions: {
      http: { enabled: false },
      azureSdk: { enabled: false },
      mongoDb: { enabled: false },
      mySql: { enabled: false },
      postgreSql: { enabled: false },
      redis: { enabled: false },
      redis4: { enabled: false },
      bunyan: { enabled: false },
      winston: { enabled: false },
    },
    // The distro replaces (not merges) its detected resource with the one given here, so only
    // override it when asked to: the Functions/App Service detectors name the role correctly.
    ...(options.cloudRoleName === undefined
      ? {}
      : { resource: defaultResource().merge(resourceFromAttributes({ "service.name": options.cloudRoleName })) }),
  };
  try {
    useAzureMonitor(distroOptions);
  } catch (error) {
    throw new ConfigError("Application Insights telemetry could not start.", {
      details: { setting: "APPLICATIONINSIGHTS_CONNECTION_STRING" },
      remedy: "Check the connection string; remove it to run without telemetry.",
      cause: error,
    });
  }

  // Loggers and meters must be taken after the start: the distro resets the global API first.
  const meter = metrics.getMeter(INSTRUMENTATION_SCOPE);
  // Gauges for levels (rules in use, the limit, extra addresses): a sum across runs means
  // nothing, the last value per run does. A counter for changes: rules written add up over time
  // ("changes per day"). The Azure exporter uses delta temporality for both, so each flush sends
  // only what this invocation recorded and a quiet process repeats nothing.
  const gauges = new Map<MetricPoint["name"], Gauge>([
    [METRIC_NAMES.rulesUsed, meter.createGauge(METRIC_NAMES.rulesUsed, { description: "IP rules on the registry after the run (planned, for dry runs).", unit: "{rule}" })],
    [METRIC_NAMES.rulesLimit, meter.createGauge(METRIC_NAMES.rulesLimit, { description: "IP rule limit of the registry (listUsages).", unit: "{rule}" })],
    [METRIC_NAMES.extraAddresses, meter.createGauge(METRIC_NAMES.extraAddresses, { description: "Addresses allowed beyond the published ranges by aggregation.", unit: "{address}" })],
  ]);
  const changes = meter.createCounter(METRIC_NAMES.changes, { description: "IP rules added plus removed (planned, for dry runs).", unit: "{rule}" });

  return {
    key,
    refs: 0,
    logger: logs.getLogger(INSTRUMENTATION_SCOPE),
    gauges,
    changes,
    providers: ([logs.getLoggerProvider(), metrics.getMeterProvider()] as unknown[]).filter(isFlushable),
  };
}

function isFlushable(provider: unknown): provider is Flushable {
  return typeof provider === "object" && provider !== null && typeof (provider as Partial<Flushable>).forceFlush === "function";
}

class AzureMonitorTelemetry implements Telemetry {
  readonly enabled = true;
  #pipeline: Pipeline | undefined;

  constructor(
    shared: Pipeline,
    private readonly flushTimeoutMs: number,
  ) {
    this.#pipeline = shared;
  }

  syncCompleted(event: Parameters<Telemetry["syncCompleted"]>[0]): void {
    this.#safely((p) => {
      emit(p, completedRecord(event));
      for (const point of completedMetricPoints(event)) record(p, point);
    });
  }

  syncFailed(event: Parameters<Telemetry["syncFailed"]>[0]): void {
    this.#safely((p) => emit(p, failedRecord(event)));
  }

  guardTripped(event: Parameters<Telemetry["guardTripped"]>[0]): void {
    this.#safely((p) => emit(p, guardTrippedRecord(event)));
  }

  driftDetected(event: Parameters<Telemetry["driftDetected"]>[0]): void {
    this.#safely((p) => emit(p, driftDetectedRecord(event)));
  }

  /** Sends what is buffered. Never rejects: a telemetry outage must not fail a sync. */
  async flush(): Promise<void> {
    const p = this.#pipeline;
    if (p === undefined) return;
    await withDeadline(Promise.allSettled(p.providers.map((provider) => provider.forceFlush())), this.flushTimeoutMs);
  }

  async shutdown(): Promise<void> {
    const p = this.#pipeline;
    if (p === undefined) return;
    await this.flush();
    this.#pipeline = undefined;
    p.refs -= 1;
    if (p.refs > 0 || pipeline !== p) return;
    pipeline = undefined;
    await withDeadline(Promise.allSettled([shutdownAzureMonitor()]), this.flushTimeoutMs);
  }

  #safely(action: (p: Pipeline) => void): void {
    const p = this.#pipeline;
    if (p === undefined) return;
    try {
      action(p);
    } catch {
      // Telemetry must never fail a sync run; the SDK reports its own trouble through OpenTelemetry diagnostics.
    }
  }
}

function emit(p: Pipeline, record: CustomEventRecord): void {
  p.logger.emit({
    severityNumber: SEVERITY[record.severity],
    severityText: record.severity.toUpperCase(),
    attributes: { [CUSTOM_EVENT_ATTRIBUTE]: record.name, ...record.properties },
  });
}

function record(p: Pipeline, point: MetricPoint): void {
  if (point.name === METRIC_NAMES.changes) {
    p.changes.add(Math.max(0, point.value), point.dimensions);
    return;
  }
  p.gauges.get(point.name)?.record(point.value, point.dimensions);
}

async function withDeadline(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    // A pending deadline must not keep a CLI process alive after the work is done.
    timer.unref();
  });
  try {
    await Promise.race([work.then(() => undefined), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
