/**
 * The events and metrics the service emits to Application Insights (`customEvents`, `customMetrics`).
 * Names are a contract with the alert rules and the workbook in `infra/`: change them together.
 */
export const EVENT_NAMES = {
  completed: "AllowlistSyncCompleted",
  failed: "AllowlistSyncFailed",
  guardTripped: "AllowlistGuardTripped",
  driftDetected: "AllowlistDriftDetected",
  skipped: "AllowlistSyncSkipped",
  registryUntagged: "AllowlistRegistryUntagged",
  fanoutScheduled: "AllowlistFanoutScheduled",
  canaryCompleted: "AllowlistCanaryCompleted",
} as const;

export const METRIC_NAMES = {
  rulesUsed: "allowlist_rules_used",
  rulesLimit: "allowlist_rules_limit",
  extraAddresses: "allowlist_extra_addresses",
  changes: "allowlist_changes",
  /** 1 when the canary's agent got in, 0 otherwise; dimensions `registry`, `region`, `verdict`. */
  canaryOk: "allowlist_canary_ok",
} as const;

/**
 * Dimensions (customMetrics.customDimensions) on every metric point. Dry runs are recorded too,
 * tagged `dryRun = "true"`; alerts and the workbook filter on `dryRun == "false"`.
 */
export const METRIC_DIMENSIONS = {
  registry: "registry",
  dryRun: "dryRun",
} as const;

export interface SyncCompletedEvent {
  readonly registry: string;
  readonly dryRun: boolean;
  readonly adds: number;
  readonly removes: number;
  readonly rulesUsed: number;
  readonly ruleLimit: number;
  readonly extraAddresses: number;
  /** `AzureContainerRegistry.EastUS=42;...` */
  readonly tagChangeNumbers: string;
  readonly sourceFile: string;
  readonly durationMs: number;
  readonly trigger: string;
  /** Which link of the source chain served the data (`details-page`, `discovery-api`, `last-good`, ...). */
  readonly sourceKind?: string | undefined;
  /** Age in days of the data used (the freshness alert fires above 10). */
  readonly dataAgeDays?: number | undefined;
  /** The highest top-level changeNumber any source answered with during the fetch. */
  readonly newestChangeNumber?: number | undefined;
}

export interface SyncFailedEvent {
  readonly registry: string;
  readonly dryRun: boolean;
  /** The error class's `code`, or `UnexpectedError`. */
  readonly errorType: string;
  /** Safe one-line message (never a token or connection string). */
  readonly message: string;
  readonly durationMs: number;
  readonly trigger: string;
}

export interface GuardTrippedEvent {
  readonly registry: string;
  readonly dryRun: boolean;
  readonly guard: string;
  readonly message: string;
  readonly trigger: string;
}

export interface DriftDetectedEvent {
  readonly registry: string;
  /** Owned rules (from the ledger) that are no longer on the registry. */
  readonly missingOwnedRules: readonly string[];
  readonly trigger: string;
}

export interface SyncSkippedEvent {
  readonly registry: string;
  /** The operator's reason, as given to `freeze --reason`. */
  readonly reason: string;
  /** Who froze it and when. */
  readonly frozenBy: string;
  readonly frozenAt: string;
  readonly trigger: string;
}

export interface RegistryUntaggedEvent {
  /** A registry discovery found last time that no longer carries the tag; its rules are left as they are. */
  readonly registry: string;
  readonly trigger: string;
}

export interface FanoutScheduledEvent {
  readonly runId: string;
  /** Messages enqueued: one per registry. */
  readonly registries: number;
  /** Discovered registries skipped before enqueueing (bad tag, not Premium). */
  readonly skipped: number;
  readonly discovered: number;
  readonly serviceTagsBlob: string;
  readonly durationMs: number;
  readonly trigger: string;
}

export interface CanaryCompletedEvent {
  readonly registry: string;
  /** ARM location of the registry: its agents ran the canary. */
  readonly region: string;
  readonly ok: boolean;
  /** `admitted`, `refused`, `failed` or `inconclusive` (see src/canary/diagnosis.ts). */
  readonly verdict: string;
  /** "" unless refused. */
  readonly refusedIp: string;
  /** Every tag of the current file holding the refused IP, regional ACR tags first. */
  readonly containingTags: readonly string[];
  readonly runId: string;
  readonly durationMs: number;
  readonly summary: string;
  /** The diagnosis: what to do (add region X, support-case evidence, ...). */
  readonly advice: string;
  readonly trigger: string;
}

/** The telemetry edge. Without a connection string, implementations accept everything and send nothing. */
export interface TelemetrySink {
  syncCompleted(event: SyncCompletedEvent): void;
  syncFailed(event: SyncFailedEvent): void;
  guardTripped(event: GuardTrippedEvent): void;
  driftDetected(event: DriftDetectedEvent): void;
  /** A frozen registry was left alone by the timer or an apply. */
  syncSkipped(event: SyncSkippedEvent): void;
  registryUntagged(event: RegistryUntaggedEvent): void;
  fanoutScheduled(event: FanoutScheduledEvent): void;
  canaryCompleted(event: CanaryCompletedEvent): void;
  /** Sends what is buffered; called before every invocation ends. */
  flush(): Promise<void>;
}

/** A sink the entry points own: `enabled` is false for the no-op sink; `shutdown` ends the SDK (tests, CLI exit). */
export interface Telemetry extends TelemetrySink {
  readonly enabled: boolean;
  /** Flushes, then stops sending. Later calls on this sink are ignored. */
  shutdown(): Promise<void>;
}
