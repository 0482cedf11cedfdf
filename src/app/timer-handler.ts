import type { InvocationContext, Timer } from "@azure/functions";
import { renderCanaryResult } from "../canary/result.js";
import { describeError } from "../errors.js";
import { runInvocation } from "../sync/invocation.js";
import type { Runtime } from "./runtime.js";

/**
 * The daily sync of every configured registry. One failing registry never stops the others;
 * any failure fails the invocation afterwards so the host records it.
 */
export function createTimerHandler(runtime: Runtime) {
  return async (timer: Timer, context: InvocationContext): Promise<void> => {
    if (timer.isPastDue) context.warn("The sync timer is past due: the previous schedule was missed.");
    const outcomes = await runInvocation(runtime.settings, runtime.ports, {
      mode: "apply",
      trigger: "timer",
      actor: "timer",
      canaryAfterApply: true,
    });
    const failures: string[] = [];
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
    if (failures.length > 0)
      throw new Error(
        `${failures.length} of ${outcomes.length} registr${outcomes.length === 1 ? "y" : "ies"} failed: ${failures.join(" | ")}`,
      );
  };
}
