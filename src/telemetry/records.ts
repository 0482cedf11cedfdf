import { scrubSecrets } from "./scrub.js";
import {
  EVENT_NAMES,
  METRIC_DIMENSIONS,
  METRIC_NAMES,
  type CanaryCompletedEvent,
  type DriftDetectedEvent,
  type FanoutScheduledEvent,
  type RegistryUntaggedEvent,
  type GuardTrippedEvent,
  type SyncCompletedEvent,
  type SyncFailedEvent,
  type SyncSkippedEvent,
} from "./types.js";

/**
 * Pure translation of the port's events into what the OpenTelemetry edge emits: one custom event
 * (a name plus flat properties) and, on completion, metric points. Kept apart from the SDK so the
 * mapping is tested with plain data and the SDK file only moves records.
 */

export type PropertyValue = string | number | boolean;
export type EventProperties = Readonly<Record<string, PropertyValue>>;

export interface CustomEventRecord {
  readonly name: string;
  readonly severity: "info" | "warn" | "error";
  readonly properties: EventProperties;
}

export type MetricName = (typeof METRIC_NAMES)[keyof typeof METRIC_NAMES];

export interface MetricPoint {
  readonly name: MetricName;
  readonly value: number;
  readonly dimensions: Readonly<Record<string, string>>;
}

/**
 * Application Insights truncates a custom dimension at 8,192 characters; a message that long is
 * noise anyway, and a drift list of 100 rules fits well inside this.
 */
export const MAX_PROPERTY_LENGTH = 4096;

function text(value: string): string {
  const clean = scrubSecrets(value);
  return clean.length <= MAX_PROPERTY_LENGTH ? clean : `${clean.slice(0, MAX_PROPERTY_LENGTH - 1)}…`;
}

function finite(value: number): number {
  // NaN and Infinity serialise as `null` in JSON and break `toint()` in KQL: send 0 and keep the row.
  return Number.isFinite(value) ? value : 0;
}

export function completedRecord(event: SyncCompletedEvent): CustomEventRecord {
  return {
    name: EVENT_NAMES.completed,
    severity: "info",
    properties: {
      registry: text(event.registry),
      dryRun: event.dryRun,
      adds: finite(event.adds),
      removes: finite(event.removes),
      rulesUsed: finite(event.rulesUsed),
      ruleLimit: finite(event.ruleLimit),
      extraAddresses: finite(event.extraAddresses),
      tagChangeNumbers: text(event.tagChangeNumbers),
      sourceFile: text(event.sourceFile),
      durationMs: finite(event.durationMs),
      trigger: text(event.trigger),
      ...(event.sourceKind === undefined ? {} : { sourceKind: text(event.sourceKind) }),
      ...(event.dataAgeDays === undefined ? {} : { dataAgeDays: finite(event.dataAgeDays) }),
      ...(event.newestChangeNumber === undefined ? {} : { newestChangeNumber: finite(event.newestChangeNumber) }),
    },
  };
}

export function failedRecord(event: SyncFailedEvent): CustomEventRecord {
  return {
    name: EVENT_NAMES.failed,
    severity: "error",
    properties: {
      registry: text(event.registry),
      dryRun: event.dryRun,
      errorType: text(event.errorType),
      message: text(event.message),
      durationMs: finite(event.durationMs),
      trigger: text(event.trigger),
    },
  };
}

export function guardTrippedRecord(event: GuardTrippedEvent): CustomEventRecord {
  return {
    name: EVENT_NAMES.guardTripped,
    severity: "warn",
    properties: {
      registry: text(event.registry),
      dryRun: event.dryRun,
      guard: text(event.guard),
      message: text(event.message),
      trigger: text(event.trigger),
    },
  };
}

export function driftDetectedRecord(event: DriftDetectedEvent): CustomEventRecord {
  return {
    name: EVENT_NAMES.driftDetected,
    severity: "warn",
    properties: {
      registry: text(event.registry),
      // A comma list reads well in the portal and splits with `split()` in KQL; OpenTelemetry
      // would otherwise send the array as a JSON string.
      missingOwnedRules: text(event.missingOwnedRules.join(",")),
      missingOwnedRuleCount: event.missingOwnedRules.length,
      trigger: text(event.trigger),
    },
  };
}

export function skippedRecord(event: SyncSkippedEvent): CustomEventRecord {
  return {
    name: EVENT_NAMES.skipped,
    severity: "info",
    properties: {
      registry: text(event.registry),
      reason: text(event.reason),
      frozenBy: text(event.frozenBy),
      frozenAt: text(event.frozenAt),
      trigger: text(event.trigger),
    },
  };
}

export function registryUntaggedRecord(event: RegistryUntaggedEvent): CustomEventRecord {
  return {
    name: EVENT_NAMES.registryUntagged,
    severity: "warn",
    properties: { registry: text(event.registry), trigger: text(event.trigger) },
  };
}

export function fanoutScheduledRecord(event: FanoutScheduledEvent): CustomEventRecord {
  return {
    name: EVENT_NAMES.fanoutScheduled,
    severity: "info",
    properties: {
      runId: text(event.runId),
      registries: finite(event.registries),
      skipped: finite(event.skipped),
      discovered: finite(event.discovered),
      serviceTagsBlob: text(event.serviceTagsBlob),
      durationMs: finite(event.durationMs),
      trigger: text(event.trigger),
    },
  };
}

export function canaryCompletedRecord(event: CanaryCompletedEvent): CustomEventRecord {
  return {
    name: EVENT_NAMES.canaryCompleted,
    // A refusal is what the alert is for; other failures are reported, but are not the allowlist's.
    severity: event.ok ? "info" : event.verdict === "refused" ? "error" : "warn",
    properties: {
      registry: text(event.registry),
      region: text(event.region),
      ok: event.ok,
      verdict: text(event.verdict),
      refusedIp: text(event.refusedIp),
      // Comma list, as for drift: readable in the portal, split() in KQL.
      containingTags: text(event.containingTags.join(",")),
      runId: text(event.runId),
      durationMs: finite(event.durationMs),
      summary: text(event.summary),
      advice: text(event.advice),
      trigger: text(event.trigger),
    },
  };
}

export function canaryMetricPoints(event: CanaryCompletedEvent): MetricPoint[] {
  return [
    {
      name: METRIC_NAMES.canaryOk,
      value: event.ok ? 1 : 0,
      dimensions: {
        [METRIC_DIMENSIONS.registry]: text(event.registry),
        region: text(event.region),
        verdict: text(event.verdict),
      },
    },
  ];
}

/**
 * The metric points of one completed run. Every point carries `registry` and `dryRun`: dry runs
 * are recorded too (a dry run's rule count is what the next apply would write), and alerts and the
 * workbook filter on `dryRun == "false"`.
 */
export function completedMetricPoints(event: SyncCompletedEvent): MetricPoint[] {
  const dimensions = {
    [METRIC_DIMENSIONS.registry]: text(event.registry),
    [METRIC_DIMENSIONS.dryRun]: String(event.dryRun),
  };
  return [
    { name: METRIC_NAMES.rulesUsed, value: finite(event.rulesUsed), dimensions },
    { name: METRIC_NAMES.rulesLimit, value: finite(event.ruleLimit), dimensions },
    { name: METRIC_NAMES.extraAddresses, value: finite(event.extraAddresses), dimensions },
    { name: METRIC_NAMES.changes, value: finite(event.adds) + finite(event.removes), dimensions },
  ];
}
