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
import type { TasksGateway } from "../canary/tasks-client.js";
import type { TelemetrySink } from "../telemetry/types.js";
import { createDeadline, type Deadline, type DeadlineStage } from "./deadline.js";
import { syncTarget, type RunResult, type SyncMode, type SyncPorts } from "./run.js";

/** Fetches the current service-tags file (the source chain lives in `src/servicetags/source.ts`). */
export interface ServiceTagsSource {
  fetch(options?: { signal?: AbortSignal }): Promise<ServiceTagsDocument>;
}

export interface InvocationPorts extends SyncPorts {
  readonly serviceTags: ServiceTagsSource;
  readonly telemetry: TelemetrySink;
  /** ACR Tasks, for the canary (absent: no canary runs). */
  readonly tasks?: TasksGateway;
}

export interface InvocationOptions {
  readonly mode: SyncMode;
  /** `timer`, `http` or `cli`: telemetry's trigger property. */
  readonly trigger: string;
  readonly actor: string;
  readonly force?: boolean;
  /** Defaults to every configured target. */
  readonly targets?: readonly TargetConfig[];
  /** The invocation's time budget and the setting it comes from (default `SYNC_DEADLINE_MS`). */
  readonly deadline?: { readonly ms: number; readonly setting: string };
}

export type TargetOutcome =
  | { readonly target: TargetConfig; readonly ok: true; readonly result: RunResult; readonly durationMs: number }
  | { readonly target: TargetConfig; readonly ok: false; readonly error: unknown; readonly durationMs: number };

/**
 * One invocation over several registries: the file is fetched once, each registry runs on its
 * own (one failing registry never stops the others), every outcome is reported to telemetry,
 * and telemetry is flushed before returning.
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
        report(ports.telemetry, outcome, options.trigger, dryRun);
        outcomes.push(outcome);
      }
      return outcomes;
    }
    for (const target of targets) {
      const targetStarted = Date.now();
      let outcome: TargetOutcome;
      // The lock wait shares the budget: waiting past it would only end in the host killing us.
      const lockWaitMs = Math.min(settings.lockWaitMs, deadline.remainingMs());
      try {
        deadline.check("not-started", target.ref.name);
        const result = await syncTarget(target, document, ports, {
          mode: options.mode,
          force: options.force,
          actor: options.actor,
          lockWaitMs,
          signal: deadline.signal,
        });
        outcome = { target, ok: true, result, durationMs: Date.now() - targetStarted };
      } catch (caught) {
        const lockCut = caught instanceof LockHeldError && lockWaitMs < settings.lockWaitMs;
        const error = lockCut
          ? deadline.error("lock", target.ref.name)
          : asDeadlineError(deadline, caught, caught instanceof LockHeldError ? "lock" : "registry", target.ref.name);
        outcome = { target, ok: false, error, durationMs: Date.now() - targetStarted };
      }
      report(ports.telemetry, outcome, options.trigger, dryRun);
      outcomes.push(outcome);
    }
    return outcomes;
  } finally {
    deadline.dispose();
    await ports.telemetry.flush();
  }
}

/** A failure caused by the spent budget (an aborted download or ARM call) reported as what it is. */
function asDeadlineError(deadline: Deadline, error: unknown, stage: DeadlineStage, registry?: string): unknown {
  if (error instanceof DeadlineExceededError || !deadline.expired()) return error;
  return deadline.error(stage, registry);
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

function report(telemetry: TelemetrySink, outcome: TargetOutcome, trigger: string, dryRun: boolean): void {
  const registry = outcome.target.ref.id;
  if (outcome.ok) {
    const { plan } = outcome.result;
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
      sourceFile: plan.source.kind === "service-tags" ? plan.source.origin.fileName : `rollback:${plan.source.auditId}`,
      durationMs: outcome.durationMs,
      trigger,
    });
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
