import type { TokenCredential } from "@azure/identity";
import {
  AzureMonitorLogExporter,
  AzureMonitorMetricExporter,
  type AzureMonitorExporterOptions,
} from "@azure/monitor-opentelemetry-exporter";
import type { Counter, Gauge } from "@opentelemetry/api";
import { SeverityNumber, type Logger } from "@opentelemetry/api-logs";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { ConfigError } from "../errors.js";
import type { DeploymentCloud } from "../servicetags/schema.js";
import { withMonitorAudience } from "./audience.js";
import { parseConnectionString } from "./connection-string.js";
import { noopTelemetry } from "./noop.js";
import {
  canaryCompletedRecord,
  canaryMetricPoints,
  completedMetricPoints,
  completedRecord,
  driftDetectedRecord,
  fanoutScheduledRecord,
  registryUntaggedRecord,
  failedRecord,
  guardTrippedRecord,
  skippedRecord,
  type CustomEventRecord,
  type MetricPoint,
} from "./records.js";
import { telemetryResource } from "./resource.js";
import { METRIC_NAMES, type Telemetry } from "./types.js";

/**
 * The telemetry edge on the Azure Monitor OpenTelemetry exporter, with a logger and a meter
 * provider that belong to the sink (nothing is registered globally, so sinks are independent).
 *
 * Not on the distro (`useAzureMonitor()` from `@azure/monitor-opentelemetry`): it runs the
 * OpenTelemetry Azure resource detectors on every start, and the VM detector calls the instance
 * metadata service at http://169.254.169.254 with no option to skip it. This sink talks to the
 * connection string's ingestion endpoint only (plus the credential's token endpoint).
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
  /**
   * `cloud_RoleName` of our rows. Default: the Functions app's name (`WEBSITE_SITE_NAME`, set by
   * the platform), else `acr-allowlist-sync`.
   */
  readonly cloudRoleName?: string | undefined;
  /**
   * The SDK's own usage telemetry ("statsbeat", "SDK stats") about itself, sent to
   * Microsoft-owned Application Insights resources; it also queries the VM metadata service.
   * Default false: nothing but our envelopes leaves the process.
   */
  readonly sdkStats?: boolean;
  /**
   * Default true: the exporter keeps envelopes it could not send in a temp folder and retries
   * them later. Tests turn it off so a failed export leaves no files behind.
   */
  readonly offlineStorage?: boolean;
  /** Upper bound for `flush()`, so a slow ingestion endpoint cannot hold an invocation open. Default 15 s. */
  readonly flushTimeoutMs?: number;
  /** Picks the Entra ID audience when the connection string has no `AADAudience` (default Public). */
  readonly cloud?: DeploymentCloud | undefined;
}

/** Scope name of our logger and meter (shows as `sdkVersion` context, not in customDimensions). */
const INSTRUMENTATION_SCOPE = "acr-allowlist-sync";

/** The log attribute that turns an OpenTelemetry log record into a `customEvents` row. */
const CUSTOM_EVENT_ATTRIBUTE = "microsoft.custom_event.name";

const DEFAULT_FLUSH_TIMEOUT_MS = 15_000;

/**
 * The exporter (1.0.0-beta.42) decides in its constructor whether to start statsbeat, from this
 * variable only (no option); `APPLICATIONINSIGHTS_STATSBEAT_DISABLED` and
 * `APPLICATIONINSIGHTS_SDKSTATS_DISABLED` switch off only parts of it.
 */
const NO_STATSBEAT_ENV = "APPLICATION_INSIGHTS_NO_STATSBEAT";

const SEVERITY: Record<CustomEventRecord["severity"], SeverityNumber> = {
  info: SeverityNumber.INFO,
  warn: SeverityNumber.WARN,
  error: SeverityNumber.ERROR,
};

interface Pipeline {
  readonly loggerProvider: LoggerProvider;
  readonly meterProvider: MeterProvider;
  readonly logger: Logger;
  readonly gauges: ReadonlyMap<MetricPoint["name"], Gauge>;
  readonly changes: Counter;
}

/**
 * Returns a sink that sends to Application Insights, or a no-op sink without a connection string.
 * Throws `ConfigError` for a malformed connection string.
 */
export function createTelemetry(options: TelemetryOptions = {}): Telemetry {
  const connectionString = options.connectionString?.trim() ?? "";
  if (connectionString === "") return noopTelemetry();
  parseConnectionString(connectionString);
  let pipeline: Pipeline;
  try {
    pipeline = startPipeline(connectionString, options);
  } catch (error) {
    throw new ConfigError("Application Insights telemetry could not start.", {
      details: { setting: "APPLICATIONINSIGHTS_CONNECTION_STRING" },
      remedy: "Check the connection string; remove it to run without telemetry.",
      cause: error,
    });
  }
  return new AzureMonitorTelemetry(pipeline, options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS);
}

function startPipeline(connectionString: string, options: TelemetryOptions): Pipeline {
  const exporterOptions: AzureMonitorExporterOptions = {
    // With a credential the exporter asks for a token for AADAudience (default: the public one).
    connectionString:
      options.credential === undefined
        ? connectionString
        : withMonitorAudience(connectionString, options.cloud ?? "Public"),
    ...(options.credential === undefined ? {} : { credential: options.credential }),
    disableOfflineStorage: options.offlineStorage === false,
  };
  const [logExporter, metricExporter] = withStatsbeat(
    options.sdkStats === true,
    () => [new AzureMonitorLogExporter(exporterOptions), new AzureMonitorMetricExporter(exporterOptions)] as const,
  );

  const resource = telemetryResource(options);
  // Batched: one request per flush for all events of an invocation. Nothing is sampled: an alert
  // depends on every failure event arriving.
  const loggerProvider = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor(logExporter)] });
  // The reader also exports on its own every minute, but only when points were recorded since the
  // last export; each invocation flushes before it ends anyway.
  const meterProvider = new MeterProvider({
    resource,
    readers: [new PeriodicExportingMetricReader({ exporter: metricExporter })],
  });

  const meter = meterProvider.getMeter(INSTRUMENTATION_SCOPE);
  // Gauges for levels (rules in use, the limit, extra addresses): a sum across runs means
  // nothing, the last value per run does. A counter for changes: rules written add up over time
  // ("changes per day"). The Azure exporter asks for delta temporality for both, so each flush
  // sends only what this invocation recorded and a quiet process repeats nothing.
  const gauges = new Map<MetricPoint["name"], Gauge>([
    [
      METRIC_NAMES.rulesUsed,
      meter.createGauge(METRIC_NAMES.rulesUsed, {
        description: "IP rules on the registry after the run (planned, for dry runs).",
        unit: "{rule}",
      }),
    ],
    [
      METRIC_NAMES.rulesLimit,
      meter.createGauge(METRIC_NAMES.rulesLimit, {
        description: "IP rule limit of the registry (listUsages).",
        unit: "{rule}",
      }),
    ],
    [
      METRIC_NAMES.extraAddresses,
      meter.createGauge(METRIC_NAMES.extraAddresses, {
        description: "Addresses allowed beyond the published ranges by aggregation.",
        unit: "{address}",
      }),
    ],
    [
      METRIC_NAMES.canaryOk,
      meter.createGauge(METRIC_NAMES.canaryOk, {
        description: "1 when the ACR Tasks canary's agent got into the registry, 0 otherwise.",
        unit: "1",
      }),
    ],
  ]);
  const changes = meter.createCounter(METRIC_NAMES.changes, {
    description: "IP rules added plus removed (planned, for dry runs).",
    unit: "{rule}",
  });

  return { loggerProvider, meterProvider, logger: loggerProvider.getLogger(INSTRUMENTATION_SCOPE), gauges, changes };
}

/**
 * Builds the exporters with statsbeat on or off without leaving the switch set for the rest of
 * the process: construction is synchronous and the exporter reads the variable only there.
 */
function withStatsbeat<T>(enabled: boolean, build: () => T): T {
  if (enabled) return build();
  const previous = process.env[NO_STATSBEAT_ENV];
  process.env[NO_STATSBEAT_ENV] = "true";
  try {
    return build();
  } finally {
    if (previous === undefined) Reflect.deleteProperty(process.env, NO_STATSBEAT_ENV);
    else process.env[NO_STATSBEAT_ENV] = previous;
  }
}

class AzureMonitorTelemetry implements Telemetry {
  readonly enabled = true;
  #pipeline: Pipeline | undefined;

  constructor(
    pipeline: Pipeline,
    private readonly flushTimeoutMs: number,
  ) {
    this.#pipeline = pipeline;
  }

  syncCompleted(event: Parameters<Telemetry["syncCompleted"]>[0]): void {
    this.#safely((p) => {
      emit(p, completedRecord(event));
      for (const point of completedMetricPoints(event)) record(p, point);
    });
  }

  syncFailed(event: Parameters<Telemetry["syncFailed"]>[0]): void {
    this.#safely((p) => {
      emit(p, failedRecord(event));
    });
  }

  guardTripped(event: Parameters<Telemetry["guardTripped"]>[0]): void {
    this.#safely((p) => {
      emit(p, guardTrippedRecord(event));
    });
  }

  driftDetected(event: Parameters<Telemetry["driftDetected"]>[0]): void {
    this.#safely((p) => {
      emit(p, driftDetectedRecord(event));
    });
  }

  registryUntagged(event: Parameters<Telemetry["registryUntagged"]>[0]): void {
    this.#safely((p) => {
      emit(p, registryUntaggedRecord(event));
    });
  }

  fanoutScheduled(event: Parameters<Telemetry["fanoutScheduled"]>[0]): void {
    this.#safely((p) => {
      emit(p, fanoutScheduledRecord(event));
    });
  }

  syncSkipped(event: Parameters<Telemetry["syncSkipped"]>[0]): void {
    this.#safely((p) => {
      emit(p, skippedRecord(event));
    });
  }

  canaryCompleted(event: Parameters<Telemetry["canaryCompleted"]>[0]): void {
    this.#safely((p) => {
      emit(p, canaryCompletedRecord(event));
      for (const point of canaryMetricPoints(event)) record(p, point);
    });
  }

  /** Sends what is buffered. Never rejects: a telemetry outage must not fail a sync. */
  async flush(): Promise<void> {
    const p = this.#pipeline;
    if (p === undefined) return;
    await withDeadline(
      Promise.allSettled([p.loggerProvider.forceFlush(), p.meterProvider.forceFlush()]),
      this.flushTimeoutMs,
    );
  }

  async shutdown(): Promise<void> {
    const p = this.#pipeline;
    if (p === undefined) return;
    await this.flush();
    this.#pipeline = undefined;
    await withDeadline(
      Promise.allSettled([p.loggerProvider.shutdown(), p.meterProvider.shutdown()]),
      this.flushTimeoutMs,
    );
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
