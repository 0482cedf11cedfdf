import type { InvocationContext, Timer } from "@azure/functions";
import { renderCanaryResult } from "../canary/result.js";
import { describeError } from "../errors.js";
import { resolveRunTargets, type RunTargets } from "../discovery/discover.js";
import { runInvocation } from "../sync/invocation.js";
import { scheduleRun } from "../fanout/scheduler.js";
import { ConfigError } from "../errors.js";
import type { Runtime } from "./runtime.js";

/** Registries one in-process invocation syncs at a time (per subscription: SYNC_MAX_PER_SUBSCRIPTION). */
export const IN_PROCESS_CONCURRENCY = 4;

/**
 * The daily sync of every configured (and discovered) registry, in this invocation: the path for
 * SYNC_FANOUT=false. One failing registry never stops the others; any failure fails the
 * invocation afterwards so the host records it. A failed discovery still lets TARGET_REGISTRIES run.
 */
export function createTimerHandler(runtime: Runtime) {
  return async (timer: Timer, context: InvocationContext): Promise<void> => {
    if (timer.isPastDue) context.warn("The sync timer is past due: the previous schedule was missed.");
    if (runtime.settings.fanout) {
      await schedule(runtime, context);
      return;
    }
    const failures: string[] = [];
    let runTargets: RunTargets | undefined;
    try {
      runTargets = await resolveRunTargets(runtime.settings, runtime.ports, { trigger: "timer", dryRun: false });
    } catch (error) {
      failures.push(`discovery: ${describeError(error)}`);
      context.error(`discovery: ${describeError(error)}`);
    }
    for (const registry of runTargets?.untagged ?? [])
      context.warn(`${registry} no longer carries the discovery tag: left as it is, not synced any more.`);
    for (const skipped of runTargets?.skipped ?? []) {
      if (skipped.ok) continue;
      failures.push(`${skipped.target.ref.name}: ${describeError(skipped.error)}`);
      context.error(`${skipped.target.ref.name}: ${describeError(skipped.error)}`);
    }
    let outcomes;
    try {
      outcomes = await runInvocation(runtime.settings, runtime.ports, {
        mode: "apply",
        trigger: "timer",
        actor: "timer",
        targets: runTargets?.targets ?? runtime.settings.targets,
        concurrency: IN_PROCESS_CONCURRENCY,
        canaryAfterApply: true,
      });
    } catch (error) {
      // A setting names a region that is none: no registry ran; the invocation fails naming the setting.
      context.error(describeError(error));
      throw error;
    }
    for (const outcome of outcomes) {
      const name = outcome.target.ref.name;
      if (outcome.ok) {
        const { plan, outcome: kind, auditId } = outcome.result;
        context.log(
          `${name}: ${kind}, +${plan.adds.length} -${plan.removes.length}, ${plan.counts.after}/${plan.counts.limit} rules${auditId === undefined ? "" : `, audit ${auditId}`}`,
        );
        // A refused canary is reported (event, alert); the sync itself succeeded.
        if (outcome.canary?.ok === true) context.log(renderCanaryResult(outcome.canary));
        else if (outcome.canary !== undefined) context.warn(renderCanaryResult(outcome.canary));
      } else {
        failures.push(`${name}: ${describeError(outcome.error)}`);
        context.error(`${name}: ${describeError(outcome.error)}`);
      }
    }
    const total = outcomes.length + (runTargets?.skipped.length ?? 0) + (runTargets === undefined ? 1 : 0);
    if (failures.length > 0)
      throw new Error(
        `${failures.length} of ${total} registr${total === 1 ? "y" : "ies"} failed: ${failures.join(" | ")}`,
      );
  };
}

/** SYNC_FANOUT=true: the timer only schedules; the queue function syncs each registry. */
async function schedule(runtime: Runtime, context: InvocationContext): Promise<void> {
  const { fanout } = runtime;
  if (fanout === undefined)
    throw new ConfigError("SYNC_FANOUT=true needs the blob ledger in AzureWebJobsStorage for the service-tags blob.");
  let run;
  try {
    run = await scheduleRun(
      runtime.settings,
      { ...runtime.ports, fanoutStore: fanout.store, queue: fanout.queue },
      { trigger: "timer" },
    );
  } catch (error) {
    // A setting names a region that is none (nothing was enqueued), or discovery failed (the
    // explicit registries were enqueued all the same).
    context.error(error instanceof ConfigError ? describeError(error) : `discovery: ${describeError(error)}`);
    throw error;
  }
  for (const registry of run.targets?.untagged ?? [])
    context.warn(`${registry} no longer carries the discovery tag: left as it is, not synced any more.`);
  context.log(
    `Run ${run.runId}: ${run.enqueued.length} registr${run.enqueued.length === 1 ? "y" : "ies"} enqueued with ${run.serviceTagsBlob ?? "no service-tags file"}.`,
  );
  const failures = run.failures.map((f) => `${f.target.ref.name}: ${f.ok ? "" : describeError(f.error)}`);
  for (const line of failures) context.error(line);
  if (failures.length > 0)
    throw new Error(
      `${failures.length} registr${failures.length === 1 ? "y" : "ies"} not enqueued: ${failures.join(" | ")}`,
    );
}
