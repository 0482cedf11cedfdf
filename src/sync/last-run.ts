import { z } from "zod";
import { AllowlistSyncError, describeError, isRefusal } from "../errors.js";
import type { RecordStore } from "../ledger/record-store.js";
import type { TargetOutcome } from "./invocation.js";

/**
 * The last apply-mode run of each registry, whatever it did: `status` shows it, because a run that
 * changes nothing writes no ledger and no audit entry, and "when did the service last look at this
 * registry, and how did it end" is the operator's first question. Dry runs (HTTP, `plan`) are
 * read-only and are not recorded.
 */
export const LAST_RUN_OUTCOMES = ["applied", "unchanged", "skipped", "refused", "failed"] as const;
export type LastRunOutcome = (typeof LAST_RUN_OUTCOMES)[number];

export interface LastRun {
  readonly registryId: string;
  readonly at: string;
  /** `timer`, `queue`, `cli`: what started it. */
  readonly trigger: string;
  /** As in the audit trail: `timer`, `queue:<runId>`, `cli:<user>@<host>`. */
  readonly actor: string;
  readonly outcome: LastRunOutcome;
  readonly durationMs: number;
  /** The audit entry an applied run wrote. */
  readonly auditId: string | undefined;
  /** Why a refused or failed run ended. */
  readonly error: { readonly code: string; readonly message: string } | undefined;
}

export type LastRunStore = RecordStore<LastRun>;

/** The stored form, validated when read back. */
export const lastRunSchema = z
  .object({
    schemaVersion: z.literal(1),
    registryId: z.string().min(1).max(400),
    at: z.iso.datetime({ offset: true }),
    trigger: z.string().max(100),
    actor: z.string().max(400),
    outcome: z.enum(LAST_RUN_OUTCOMES),
    durationMs: z.number().nonnegative(),
    auditId: z.string().max(100).nullish(),
    error: z.object({ code: z.string().max(100), message: z.string().max(8192) }).nullish(),
  })
  .transform(({ schemaVersion: _version, auditId, error, ...rest }): LastRun => ({
    ...rest,
    auditId: auditId ?? undefined,
    error: error ?? undefined,
  }));

/** Absent fields are written as `null`, so every stored document shows every field. */
export function lastRunToJson(run: LastRun): Record<string, unknown> {
  return { schemaVersion: 1, ...run, auditId: run.auditId ?? null, error: run.error ?? null };
}

export function lastRunOf(outcome: TargetOutcome, context: { trigger: string; actor: string; at: Date }): LastRun {
  const base = {
    registryId: outcome.target.ref.id,
    at: context.at.toISOString(),
    trigger: context.trigger,
    actor: context.actor,
    durationMs: outcome.durationMs,
  };
  if (outcome.ok) {
    const ran = outcome.result.outcome;
    return {
      ...base,
      // An apply-mode run is never a dry run; "dry-run" cannot reach here, but is not a stored outcome.
      outcome: ran === "dry-run" ? "unchanged" : ran,
      auditId: outcome.result.auditId,
      error: undefined,
    };
  }
  const error = outcome.error;
  return {
    ...base,
    outcome: isRefusal(error) ? "refused" : "failed",
    auditId: undefined,
    error: {
      code: error instanceof AllowlistSyncError ? error.code : "UnexpectedError",
      message: describeError(error).slice(0, 8192),
    },
  };
}

/**
 * Records an apply-mode outcome. A report, not state: a storage failure here must not turn a
 * good sync into a failed one, so it is dropped (the run's own telemetry event still says how it
 * ended) and the previous record stays.
 */
export async function recordLastRun(
  store: LastRunStore | undefined,
  outcome: TargetOutcome,
  context: { trigger: string; actor: string; now?: (() => Date) | undefined },
): Promise<void> {
  if (store === undefined) return;
  try {
    await store.write(lastRunOf(outcome, { ...context, at: context.now?.() ?? new Date() }));
  } catch {
    // See above: the record is best effort.
  }
}
