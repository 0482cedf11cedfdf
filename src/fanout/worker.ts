import { recordLastRun, type LastRunStore } from "../sync/last-run.js";
import { targetFrom, type Settings, type TargetConfig } from "../config/settings.js";
import { AllowlistSyncError, MessagePoisonedError, describeError } from "../errors.js";
import { parseRegistryId } from "../registry/resource-id.js";
import type { CanaryServices } from "../canary/invoke.js";
import type { ServiceTagsDocument } from "../servicetags/schema.js";
import { createDeadline } from "../sync/deadline.js";
import {
  canariesAfterApply,
  reportOutcome,
  reportOverdueGrants,
  syncOne,
  type TargetOutcome,
} from "../sync/invocation.js";
import type { SyncPorts } from "../sync/run.js";
import type { KeyedLimiter } from "../sync/bounded.js";
import type { TelemetrySink } from "../telemetry/types.js";
import { MAX_DEQUEUE_COUNT, decodeMessage, type FanoutMessage } from "./message.js";
import type { FanoutStore } from "./tags-store.js";

export interface WorkerPorts extends SyncPorts {
  readonly fanoutStore: FanoutStore;
  readonly telemetry: TelemetrySink;
  /** SYNC_MAX_PER_SUBSCRIPTION across the messages this process handles at the same time. */
  readonly subscriptionLimiter?: KeyedLimiter;
  /** ACR Tasks and the last results: the after-change canary of canary registries (absent: none runs). */
  readonly canary?: CanaryServices;
  /** Where the registry's last run is recorded (absent: not recorded). */
  readonly runs?: LastRunStore | undefined;
}

export type WorkerResult =
  | { readonly kind: "done"; readonly outcome: TargetOutcome }
  /** Same run, same registry, already done: nothing read, nothing written. */
  | { readonly kind: "duplicate"; readonly message: FanoutMessage }
  /** Not a fan-out message, or its file is gone: reported and dropped (a retry cannot help). */
  | { readonly kind: "dropped"; readonly error: unknown }
  /** A failure worth retrying: the caller throws, so the host redelivers (or poisons) the message. */
  | { readonly kind: "retry"; readonly outcome: TargetOutcome; readonly finalAttempt: boolean };

// A retry helps a registry only when the failure can go away by itself.
const PERMANENT_CODES = new Set([
  "RegistryNotFound",
  "RegistryAccessDenied",
  "NetworkRuleNotSupported",
  "RuleQuotaExceeded",
  "RegistryStateInvalid",
]);

export function isRetryable(error: unknown): boolean {
  if (!(error instanceof AllowlistSyncError)) return true;
  if (PERMANENT_CODES.has(error.code)) return false;
  // `deadline`: this delivery ran out of SYNC_DEADLINE_MS (a slow ARM, a long lock wait); the next may not.
  return (
    error.category === "registry" ||
    error.category === "ledger" ||
    error.category === "conflict" ||
    error.category === "source" ||
    error.category === "deadline"
  );
}

/**
 * One queue message: one registry of one run, with the existing lock, ledger, guards and
 * telemetry (`syncOne` is the same function the timer and the CLI use). Duplicate delivery is
 * harmless twice over: a finished registry of a run has a marker and is skipped, and a second
 * sync of the same file finds nothing to change and writes nothing. A retryable failure is
 * reported only on the last delivery the host allows (earlier ones are retries, not failures);
 * after it the host moves the message to the poison queue (`handlePoisonMessage`).
 */
export async function handleSyncMessage(
  settings: Settings,
  ports: WorkerPorts,
  input: unknown,
  delivery: { readonly dequeueCount: number },
): Promise<WorkerResult> {
  // Each delivery is an invocation of its own with the host's functionTimeout: the same budget as
  // the timer's (SYNC_DEADLINE_MS), the wait for the subscription's slot included.
  const deadline = createDeadline(settings.deadlineMs, "SYNC_DEADLINE_MS");
  try {
    let message: FanoutMessage;
    try {
      message = decodeMessage(input);
    } catch (error) {
      ports.telemetry.syncFailed({
        registry: "(unreadable message)",
        dryRun: false,
        errorType: error instanceof AllowlistSyncError ? error.code : "UnexpectedError",
        message: describeError(error),
        durationMs: 0,
        trigger: "queue",
      });
      return { kind: "dropped", error };
    }
    const target: TargetConfig = {
      ...targetFrom(parseRegistryId(message.registryId, "registryId"), message.target, settings.targetDefaults),
      ...(message.canary === undefined ? {} : { canary: message.canary }),
    };
    // A redelivery (dequeueCount > 1) may follow a delivery that finished but was not deleted; a first
    // delivery cannot, so it saves the marker read (a message the scheduler sent twice is the one other
    // duplicate: its second sync finds nothing left to change and writes nothing).
    if (delivery.dequeueCount > 1 && (await ports.fanoutStore.isDone(message.runId, target.ref.id)))
      return { kind: "duplicate", message };
    let outcome: TargetOutcome;
    let document: ServiceTagsDocument | undefined;
    try {
      const [stored, source] = await Promise.all([
        ports.fanoutStore.getServiceTags(message.serviceTagsBlob),
        ports.fanoutStore.getRunSource(message.runId),
      ]);
      // The document as the timer's chain handed it out: the file, and the run's lags and warnings.
      const file: ServiceTagsDocument = { ...stored, ...source };
      document = file;
      const sync = () =>
        syncOne(settings, target, file, ports, { mode: "apply", actor: `queue:${message.runId}` }, deadline);
      outcome = await (ports.subscriptionLimiter?.run(target.ref.subscriptionId, sync) ?? sync());
    } catch (error) {
      outcome = { target, ok: false, error, durationMs: 0 };
    }
    const report = async (): Promise<void> => {
      // As the timer does: a failed run leaves expired grants on the registry, so they are overdue.
      if (!outcome.ok) await reportOverdueGrants(ports.ledger, ports.telemetry, target, message.trigger, ports.now);
      await recordLastRun(ports.runs, outcome, { trigger: "queue", actor: `queue:${message.runId}`, now: ports.now });
      reportOutcome(ports.telemetry, outcome, message.trigger, false, document?.newestChangeNumberSeen);
    };
    if (!outcome.ok && isRetryable(outcome.error)) {
      const finalAttempt = delivery.dequeueCount >= MAX_DEQUEUE_COUNT;
      if (finalAttempt) await report();
      return { kind: "retry", outcome, finalAttempt };
    }
    await report();
    // Guard trips and permanent failures are results too: the registry is done for this run.
    await ports.fanoutStore.markDone(message.runId, target.ref.id);
    // As the timer does after an applied change: the canary, once the new rules have had time to take
    // effect (a redelivery after this point finds the marker and does not sync or run it again).
    if (outcome.ok && document !== undefined && ports.canary !== undefined) {
      const outcomes = [outcome];
      await canariesAfterApply(settings, { ...ports, canary: ports.canary }, outcomes, document, deadline);
      outcome = outcomes[0] ?? outcome;
    }
    return { kind: "done", outcome };
  } finally {
    deadline.dispose();
    await ports.telemetry.flush();
  }
}

/**
 * A message the host gave up on (it is on `<queue>-poison` now): `AllowlistSyncFailed` with
 * errorType `Poisoned`, which the alerts watch. The message is consumed; its text is in the event.
 */
export async function handlePoisonMessage(ports: { readonly telemetry: TelemetrySink }, input: unknown): Promise<void> {
  let registry = "(unreadable message)";
  let runId = "?";
  try {
    const message = decodeMessage(input);
    registry = message.registryId;
    runId = message.runId;
  } catch {
    // Poisoned and unreadable: still reported.
  }
  const error = new MessagePoisonedError(
    `The sync of ${registry} (run ${runId}) failed on all ${MAX_DEQUEUE_COUNT} deliveries and its message was moved to the poison queue.`,
    {
      details: { registry, runId },
      remedy: "See the AllowlistSyncFailed events of this registry for why; the next scheduled run tries it again.",
    },
  );
  ports.telemetry.syncFailed({
    registry,
    dryRun: false,
    errorType: error.code,
    message: error.describe(),
    durationMs: 0,
    trigger: "queue",
  });
  await ports.telemetry.flush();
}
