import { setTimeout as delay } from "node:timers/promises";
import type { TargetConfig } from "../config/settings.js";
import { AllowlistSyncError, describeError } from "../errors.js";
import type { RegistryGateway } from "../registry/types.js";
import type { ServiceTagsDocument } from "../servicetags/schema.js";
import type { TelemetrySink } from "../telemetry/types.js";
import { runCanary } from "./canary.js";
import type { CanaryResult, CanaryResultStore } from "./result.js";
import type { TasksGateway } from "./tasks-client.js";

/** What the canary needs beyond the sync's ports. */
export interface CanaryServices {
  readonly tasks: TasksGateway;
  readonly results: CanaryResultStore;
  /** Between two reads of a run. */
  readonly pollIntervalMs: number;
}

export interface CanaryInvocationPorts {
  readonly registry: RegistryGateway;
  readonly canary: CanaryServices;
  readonly telemetry: TelemetrySink;
  readonly now?: () => Date;
}

export interface CanaryInvocationOptions {
  /** `after-apply`, `timer` or `cli`. */
  readonly trigger: string;
  readonly document: ServiceTagsDocument | undefined;
  readonly deadlineMs: number;
  /** Wait before the first run: new rules take a few minutes to take effect (0 in tests). */
  readonly delayMs?: number;
  readonly signal?: AbortSignal;
  /**
   * What is left of the invocation that runs the canary (the sync's `SYNC_DEADLINE_MS` after a
   * change): the wait and every run must end before the host ends the invocation, so each run's
   * deadline is cut to what is left, and a canary with less than `MIN_CANARY_RUN_MS` left after the
   * wait does not start (an `inconclusive` result says why; the canary's own timer runs it next).
   */
  readonly budget?: { readonly remainingMs: () => number; readonly setting: string };
}

/** Below this a quick run cannot be scheduled, queued, run and read: not worth starting. */
export const MIN_CANARY_RUN_MS = 30_000;

/**
 * Runs the canary on each registry in turn, stores each result as the registry's last one and
 * reports it to telemetry. Never throws for one registry: a registry that could not even be read
 * becomes a `failed` result, so every registry asked for has a result, stored and reported.
 */
export async function runCanaries(
  targets: readonly TargetConfig[],
  ports: CanaryInvocationPorts,
  options: CanaryInvocationOptions,
): Promise<CanaryResult[]> {
  if (targets.length === 0) return [];
  const callOptions = options.signal === undefined ? {} : { signal: options.signal };
  const delayMs = options.delayMs ?? 0;
  const budget = options.budget;
  // No time for the wait and one run: waiting would only end in the host killing the invocation.
  const waits = delayMs > 0 && (budget === undefined || budget.remainingMs() >= delayMs + MIN_CANARY_RUN_MS);
  if (waits) await delay(delayMs, undefined, callOptions);
  const now = ports.now ?? (() => new Date());
  const results: CanaryResult[] = [];
  for (const target of targets) {
    const started = Date.now();
    const leftMs = budget?.remainingMs() ?? Infinity;
    let result: CanaryResult;
    try {
      if (budget !== undefined && ((delayMs > 0 && !waits) || leftMs < MIN_CANARY_RUN_MS))
        result = outOfTime(target, now().toISOString(), leftMs, budget.setting, delayMs, options);
      else
        result = await runCanary(
          target,
          { registry: ports.registry, tasks: ports.canary.tasks, now },
          {
            deadlineMs: Math.min(options.deadlineMs, leftMs),
            pollIntervalMs: ports.canary.pollIntervalMs,
            trigger: options.trigger,
            document: options.document,
            ...callOptions,
          },
        );
    } catch (error) {
      result = unrunnable(target, error, now().toISOString(), Date.now() - started, options);
    }
    try {
      await ports.canary.results.write(result);
    } catch (error) {
      // The result still reaches telemetry and the caller; only the "last result" shown by the plan is stale.
      result = { ...result, warnings: [...result.warnings, `The result was not stored: ${describeError(error)}`] };
    }
    ports.telemetry.canaryCompleted({
      registry: result.registryId,
      region: result.region,
      ok: result.ok,
      verdict: result.verdict,
      refusedIp: result.refusedIp ?? "",
      containingTags: result.containingTags,
      runId: result.runId ?? "",
      durationMs: result.durationMs,
      summary: result.summary,
      advice: result.advice,
      trigger: result.trigger,
    });
    results.push(result);
  }
  return results;
}

/** The canary that did not start: too little of the invocation was left (see `budget`). */
function outOfTime(
  target: TargetConfig,
  at: string,
  leftMs: number,
  setting: string,
  delayMs: number,
  options: CanaryInvocationOptions,
): CanaryResult {
  const needed = delayMs + MIN_CANARY_RUN_MS;
  return notRun(target, at, 0, options, {
    verdict: "inconclusive",
    why: `${Math.round(leftMs / 1000)} s of the invocation's budget (${setting}) were left, and the propagation wait and one run need ${Math.round(needed / 1000)} s.`,
    advice: `Not an allowlist failure. The canary's own timer (CANARY_SCHEDULE) runs it next; run it now with the CLI's canary command. If it keeps happening, lower CANARY_PROPAGATION_DELAY_MS or sync fewer registries per invocation.`,
  });
}

function unrunnable(
  target: TargetConfig,
  error: unknown,
  at: string,
  durationMs: number,
  options: CanaryInvocationOptions,
): CanaryResult {
  const remedy = error instanceof AllowlistSyncError ? error.remedy : undefined;
  return notRun(target, at, durationMs, options, {
    verdict: "failed",
    why: error instanceof Error ? error.message : String(error),
    advice: `Not an allowlist failure: the registry could not be read. ${remedy ?? "The next canary tries again."}`,
  });
}

/** A result for a canary that never scheduled a run: no region, run or diagnosis, only why. */
function notRun(
  target: TargetConfig,
  at: string,
  durationMs: number,
  options: CanaryInvocationOptions,
  outcome: { readonly verdict: "inconclusive" | "failed"; readonly why: string; readonly advice: string },
): CanaryResult {
  return {
    schemaVersion: 1,
    registryId: target.ref.id,
    registry: target.ref.name,
    region: "",
    runId: undefined,
    runStatus: undefined,
    at,
    durationMs,
    trigger: options.trigger,
    serviceTagsFile: options.document?.origin.fileName,
    verdict: outcome.verdict,
    ok: false,
    refusedIp: undefined,
    containingTags: [],
    summary: `The canary did not run on ${target.ref.name}: ${outcome.why}`,
    advice: outcome.advice,
    warnings: [],
  };
}

export interface OnDemandCanaryPorts extends CanaryInvocationPorts {
  readonly serviceTags: { fetch(options?: { signal?: AbortSignal }): Promise<ServiceTagsDocument> };
}

/**
 * The canary on its own (timer, CLI): fetch the current file for the diagnosis (a source outage
 * does not stop the canary, it only leaves the tags unknown), run, flush telemetry.
 */
export async function runCanaryInvocation(
  targets: readonly TargetConfig[],
  ports: OnDemandCanaryPorts,
  options: Omit<CanaryInvocationOptions, "document" | "delayMs">,
): Promise<{ readonly results: CanaryResult[]; readonly sourceError: unknown }> {
  try {
    let document: ServiceTagsDocument | undefined;
    let sourceError: unknown;
    try {
      document = await ports.serviceTags.fetch(options.signal === undefined ? {} : { signal: options.signal });
    } catch (error) {
      sourceError = error;
    }
    const results = await runCanaries(targets, ports, { ...options, document });
    return { results, sourceError };
  } finally {
    await ports.telemetry.flush();
  }
}
