import {
  AllowlistSyncError,
  DeadlineExceededError,
  GuardError,
  LockHeldError,
  describeError,
  type GuardName,
} from "../errors.js";
import type { Settings, TargetConfig } from "../config/settings.js";
import type { ServiceTagsDocument } from "../servicetags/schema.js";
import type { DiscoveryMemory, DiscoverySource } from "../discovery/types.js";
import { runCanaries, type CanaryInvocationPorts, type CanaryServices } from "../canary/invoke.js";
import type { CanaryResult } from "../canary/result.js";
import type { GrantChange } from "../grants/change.js";
import type { Grant, LedgerStore } from "../ledger/types.js";
import type { GrantEventBase, TelemetrySink } from "../telemetry/types.js";
import type { Plan } from "./plan.js";
import { createDeadline, type Deadline, type DeadlineStage } from "./deadline.js";
import { forEachBounded } from "./bounded.js";
import { recordLastRun, type LastRunStore } from "./last-run.js";
import { checkRegionNames } from "./region-names.js";
import { syncTarget, type RunResult, type SyncMode, type SyncPorts } from "./run.js";

/** Fetches the current service-tags file (the source chain lives in `src/servicetags/source.ts`). */
export interface ServiceTagsSource {
  fetch(options?: { signal?: AbortSignal }): Promise<ServiceTagsDocument>;
}

export interface InvocationPorts extends SyncPorts {
  readonly serviceTags: ServiceTagsSource;
  readonly telemetry: TelemetrySink;
  /** Resource Graph, used when TARGET_DISCOVERY_TAG is set. */
  readonly discovery?: DiscoverySource | undefined;
  readonly discoveryMemory?: DiscoveryMemory | undefined;
  /** ACR Tasks and the last results, for the canary (absent: no canary runs). */
  readonly canary?: CanaryServices;
  /** Where each registry's last apply-mode run is recorded (absent: not recorded). */
  readonly runs?: LastRunStore | undefined;
}

export interface InvocationOptions {
  readonly mode: SyncMode;
  /** `timer`, `http` or `cli`: telemetry's trigger property. */
  readonly trigger: string;
  readonly actor: string;
  readonly force?: boolean;
  /** Called with each plan right before its PATCH (the CLI shows what it is about to write). */
  readonly beforeWrite?: ((target: TargetConfig, plan: Plan) => void) | undefined;
  /** Defaults to every configured target. */
  readonly targets?: readonly TargetConfig[];
  /** The invocation's time budget and the setting it comes from (default `SYNC_DEADLINE_MS`). */
  readonly deadline?: { readonly ms: number; readonly setting: string };
  /** Registries synced at the same time (default 1); per subscription at most `settings.maxPerSubscription`. */
  readonly concurrency?: number;
  /** A `grant` or `revoke` for the (single) target: see `RunOptions.grant`. */
  readonly grant?: GrantChange;
  /**
   * Apply mode: run the canary on each canary registry whose sync applied a change, after the
   * propagation delay (the timer does; the CLI runs `canary` on demand instead of waiting).
   */
  readonly canaryAfterApply?: boolean;
}

export type TargetOutcome =
  | {
      readonly target: TargetConfig;
      readonly ok: true;
      readonly result: RunResult;
      readonly durationMs: number;
      /** The canary run after this registry's applied change. */
      readonly canary?: CanaryResult;
    }
  | { readonly target: TargetConfig; readonly ok: false; readonly error: unknown; readonly durationMs: number };

/**
 * One invocation over several registries: the file is fetched once, each registry runs on its
 * own (one failing registry never stops the others), every outcome is reported to telemetry,
 * and telemetry is flushed before returning. It throws only a `ConfigError`: SYNC_REGIONS or
 * TARGET_REGISTRIES names a region that is none (see `region-names.ts`); then no registry ran.
 */
export async function runInvocation(
  settings: Settings,
  ports: InvocationPorts,
  options: InvocationOptions,
): Promise<TargetOutcome[]> {
  const targets = options.targets ?? settings.targets;
  const outcomes: TargetOutcome[] = [];
  const dryRun = options.mode === "plan";
  const deadline = createDeadline(
    options.deadline?.ms ?? settings.deadlineMs,
    options.deadline?.setting ?? "SYNC_DEADLINE_MS",
  );
  try {
    const started = Date.now();
    let document: ServiceTagsDocument;
    try {
      document = await ports.serviceTags.fetch({ signal: deadline.signal });
    } catch (caught) {
      const error = asDeadlineError(deadline, caught, "download");
      for (const target of targets) {
        const outcome: TargetOutcome = { target, ok: false, error, durationMs: Date.now() - started };
        // No file, no run: expired grants stay on the registry, so they are overdue like after any failure.
        if (!dryRun) {
          await reportOverdueGrants(ports.ledger, ports.telemetry, target, options.trigger, ports.now);
          await recordLastRun(ports.runs, outcome, { ...options, now: ports.now });
        }
        reportOutcome(ports.telemetry, outcome, options.trigger, dryRun);
        outcomes.push(outcome);
      }
      return outcomes;
    }
    const refusedByRegion = await checkRegionsOrThrow(targets, document, ports, options.trigger, dryRun);
    const byIndex: TargetOutcome[] = [];
    await forEachBounded(
      targets,
      {
        concurrency: options.concurrency ?? 1,
        perKey: settings.maxPerSubscription,
        keyOf: (target) => target.ref.subscriptionId,
      },
      async (target, index) => {
        const refused = refusedByRegion.get(index);
        const outcome =
          refused === undefined
            ? await syncOne(settings, target, document, ports, options, deadline)
            : { target, ok: false as const, error: refused, durationMs: 0 };
        if (!outcome.ok && !dryRun)
          await reportOverdueGrants(ports.ledger, ports.telemetry, target, options.trigger, ports.now);
        if (!dryRun) await recordLastRun(ports.runs, outcome, { ...options, now: ports.now });
        reportOutcome(ports.telemetry, outcome, options.trigger, dryRun, document.newestChangeNumberSeen);
        byIndex[index] = outcome;
      },
    );
    // Outcomes in the order of the targets, whatever order they finished in.
    outcomes.push(...byIndex);
    if (options.mode === "apply" && options.canaryAfterApply === true && ports.canary !== undefined)
      await canariesAfterApply(settings, { ...ports, canary: ports.canary }, outcomes, document, deadline);
    return outcomes;
  } finally {
    deadline.dispose();
    await ports.telemetry.flush();
  }
}

/**
 * The configured regions against the file, before any registry runs (see `region-names.ts`). A
 * setting that names a region that is none is reported for every target and thrown (no registry
 * runs); returns the targets that fail on their own (a bad regions tag), by index.
 */
export async function checkRegionsOrThrow(
  targets: readonly TargetConfig[],
  document: ServiceTagsDocument,
  ports: { readonly ledger: Pick<LedgerStore, "read">; readonly telemetry: TelemetrySink },
  trigger: string,
  dryRun: boolean,
): Promise<ReadonlyMap<number, unknown>> {
  const { configError, failed } = await checkRegionNames(targets, document.file, ports.ledger);
  if (configError === undefined) return failed;
  for (const target of targets)
    reportOutcome(ports.telemetry, { target, ok: false, error: configError, durationMs: 0 }, trigger, dryRun);
  throw configError;
}

/** A failure caused by the spent budget (an aborted download or ARM call) reported as what it is. */
function asDeadlineError(deadline: Deadline, error: unknown, stage: DeadlineStage, registry?: string): unknown {
  if (error instanceof DeadlineExceededError || !deadline.expired()) return error;
  return deadline.error(stage, registry);
}

/** One registry against an already fetched file; never throws (the failure is the outcome). */
export async function syncOne(
  settings: Settings,
  target: TargetConfig,
  document: ServiceTagsDocument,
  ports: SyncPorts,
  options: Pick<InvocationOptions, "mode" | "force" | "actor" | "grant" | "beforeWrite">,
  /** The invocation's budget; without one only the lock wait and the operation timeout bound the run. */
  deadline?: Deadline,
): Promise<TargetOutcome> {
  const started = Date.now();
  // The lock wait shares the budget: waiting past it would only end in the host killing us.
  const lockWaitMs =
    deadline === undefined ? settings.lockWaitMs : Math.min(settings.lockWaitMs, deadline.remainingMs());
  try {
    deadline?.check("not-started", target.ref.name);
    // A freeze is the operator's "leave it alone" (after a rollback or a manual fix): read under the
    // registry's lock, so one made while this apply waited for the lock is honoured too.
    const result = await syncTarget(target, document, ports, {
      mode: options.mode,
      force: options.force,
      actor: options.actor,
      lockWaitMs,
      signal: deadline?.signal,
      grant: options.grant,
      honourFreeze: options.mode === "apply",
      beforeWrite: options.beforeWrite === undefined ? undefined : (plan) => options.beforeWrite?.(target, plan),
    });
    return { target, ok: true, result, durationMs: Date.now() - started };
  } catch (caught) {
    if (deadline === undefined) return { target, ok: false, error: caught, durationMs: Date.now() - started };
    const lockCut = caught instanceof LockHeldError && lockWaitMs < settings.lockWaitMs;
    const error = lockCut
      ? deadline.error("lock", target.ref.name)
      : asDeadlineError(deadline, caught, caught instanceof LockHeldError ? "lock" : "registry", target.ref.name);
    return { target, ok: false, error, durationMs: Date.now() - started };
  }
}

/**
 * After ARM reported success: the changed canary registries, once the new rules have had time to
 * take effect. Each outcome that ran one gets its result. The timer runs it after all its
 * registries; a queue message after its one registry (`src/fanout/worker.ts`).
 */
export async function canariesAfterApply(
  settings: Settings,
  ports: CanaryInvocationPorts,
  outcomes: TargetOutcome[],
  document: ServiceTagsDocument,
  /** The invocation's budget: the wait and the runs are cut to what is left of it. */
  deadline?: Deadline,
): Promise<void> {
  const due = outcomes.flatMap((outcome, index) =>
    outcome.ok && outcome.result.outcome === "applied" && outcome.target.canary !== undefined ? [index] : [],
  );
  if (due.length === 0) return;
  const results = await runCanaries(
    due.flatMap((index) => outcomes[index]?.target ?? []),
    ports,
    {
      trigger: "after-apply",
      document,
      deadlineMs: settings.canary.deadlineMs,
      delayMs: settings.canary.propagationDelayMs,
      ...(deadline === undefined
        ? {}
        : { budget: { remainingMs: () => deadline.remainingMs(), setting: deadline.setting } }),
    },
  );
  due.forEach((index, i) => {
    const outcome = outcomes[index];
    const canary = results[i];
    if (outcome?.ok === true && canary !== undefined) outcomes[index] = { ...outcome, canary };
  });
}

/** The guard a guard-category error stands for (typed errors raised outside `evaluateGuards` included). */
export function guardNameOf(error: unknown): GuardName | undefined {
  if (error instanceof GuardError) return error.guard;
  if (!(error instanceof AllowlistSyncError) || error.category !== "guard") return undefined;
  switch (error.code) {
    case "ServiceTagMissing":
      return "tag-missing";
    default:
      return "budget";
  }
}

/** The events of one registry's outcome: completed (plus drift and guard findings), guard tripped, or failed. */
export function reportOutcome(
  telemetry: TelemetrySink,
  outcome: TargetOutcome,
  trigger: string,
  dryRun: boolean,
  newestChangeNumber?: number,
): void {
  const registry = outcome.target.ref.id;
  if (outcome.ok) {
    const { plan, freeze } = outcome.result;
    if (freeze !== undefined) {
      telemetry.syncSkipped({ registry, reason: freeze.reason, frozenBy: freeze.by, frozenAt: freeze.at, trigger });
      return;
    }
    if (plan.drift.length > 0) telemetry.driftDetected({ registry, missingOwnedRules: plan.drift, trigger });
    for (const finding of plan.guards)
      telemetry.guardTripped({ registry, dryRun, guard: finding.guard, message: finding.message, trigger });
    telemetry.syncCompleted({
      registry,
      dryRun,
      adds: plan.adds.length,
      removes: plan.removes.length,
      rulesUsed: dryRun ? plan.counts.before : plan.counts.after,
      ruleLimit: plan.counts.limit,
      extraAddresses: plan.aggregation.extraAddresses,
      tagChangeNumbers:
        plan.source.kind === "service-tags"
          ? plan.source.tags.map((tag) => `${tag.name}=${tag.changeNumber}`).join(";")
          : "",
      sourceFile:
        plan.source.kind === "service-tags"
          ? plan.source.origin.fileName
          : plan.source.kind === "rollback"
            ? `rollback:${plan.source.auditId}`
            : "release",
      durationMs: outcome.durationMs,
      trigger,
      ...(plan.source.kind === "service-tags"
        ? {
            sourceKind: plan.source.origin.kind,
            dataAgeDays: plan.source.origin.dataAgeDays,
            newestChangeNumber: newestChangeNumber ?? plan.source.origin.changeNumber,
          }
        : {}),
    });
    if (!dryRun) reportGrants(telemetry, outcome.result, registry, trigger);
    return;
  }
  const guard = guardNameOf(outcome.error);
  if (guard !== undefined) {
    telemetry.guardTripped({ registry, dryRun, guard, message: describeError(outcome.error), trigger });
    return;
  }
  telemetry.syncFailed({
    registry,
    dryRun,
    errorType: outcome.error instanceof AllowlistSyncError ? outcome.error.code : "UnexpectedError",
    message: describeError(outcome.error),
    durationMs: outcome.durationMs,
    trigger,
  });
}

/** Grant events of a run that wrote or recorded its plan: the grant it added, the grants it ended. */
function reportGrants(telemetry: TelemetrySink, result: RunResult, registry: string, trigger: string): void {
  const { plan, grant } = result;
  const recorded =
    result.outcome === "applied" || (result.outcome === "unchanged" && grant?.kind !== "already-admitted");
  if (!recorded) return;
  if (grant?.kind === "added" && result.outcome === "applied") {
    telemetry.grantAdded({ registry, ...grantFields(grant.grant), createdAt: grant.grant.createdAt, trigger });
  }
  for (const ended of plan.grants.expired) {
    telemetry.grantExpired({
      registry,
      ...grantFields(ended),
      endedAt: plan.grants.clock ?? "",
      revokedBy: ended.revokedBy ?? "",
      trigger,
    });
  }
}

function grantFields(grant: Grant): Omit<GrantEventBase, "registry" | "trigger"> {
  return {
    rule: grant.rule,
    grantId: grant.id,
    grantedBy: grant.grantedBy,
    reason: grant.reason,
    expiresAt: grant.expiresAt,
  };
}

/**
 * A run that failed leaves every grant on the registry, the expired ones too: say so for each one
 * past its expiry (by this machine's clock), so the overdue-grant alert sees it even while every
 * run fails. Best effort: a ledger that cannot be read is already the failure being reported.
 */
export async function reportOverdueGrants(
  ledger: LedgerStore,
  telemetry: TelemetrySink,
  target: TargetConfig,
  trigger: string,
  now: (() => Date) | undefined,
): Promise<void> {
  let grants: readonly Grant[];
  try {
    grants = (await ledger.read(target.ref.id))?.grants ?? [];
  } catch {
    return;
  }
  const at = (now ?? (() => new Date()))().getTime();
  for (const grant of grants) {
    const overdueMs = at - Date.parse(grant.expiresAt);
    if (overdueMs < 0) continue;
    telemetry.grantOverdue({
      registry: target.ref.id,
      ...grantFields(grant),
      overdueMinutes: Math.floor(overdueMs / 60_000),
      trigger,
    });
  }
}
