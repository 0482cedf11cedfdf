import type { InvocationContext, Timer } from "@azure/functions";
import { runCanaryInvocation } from "../canary/invoke.js";
import { renderCanaryResult } from "../canary/result.js";
import { describeError } from "../errors.js";
import type { Runtime } from "./runtime.js";

/**
 * The canary on its own schedule (CANARY_SCHEDULE), on every canary registry, whether or not the
 * last sync changed anything: ranges that stop working without a change in the file show up here.
 * A registry whose agent did not get in fails the invocation afterwards, so the host records it.
 */
export function createCanaryTimerHandler(runtime: Runtime) {
  return async (timer: Timer, context: InvocationContext): Promise<void> => {
    if (timer.isPastDue) context.warn("The canary timer is past due: the previous schedule was missed.");
    const targets = runtime.settings.targets.filter((target) => target.canary !== undefined);
    const canary = runtime.ports.canary;
    if (targets.length === 0 || canary === undefined) {
      context.log("No canary registry is configured (CANARY_REGISTRIES, CANARY_ON_TARGETS): nothing to do.");
      return;
    }
    const { results, sourceError } = await runCanaryInvocation(
      targets,
      { ...runtime.ports, canary },
      { trigger: "timer", deadlineMs: runtime.settings.canary.deadlineMs },
    );
    if (sourceError !== undefined)
      context.warn(`The service-tags file could not be fetched; diagnoses name no tags: ${describeError(sourceError)}`);
    const failures: string[] = [];
    for (const result of results) {
      if (result.ok) {
        context.log(renderCanaryResult(result));
      } else {
        context.error(renderCanaryResult(result));
        failures.push(`${result.registry}: ${result.verdict}: ${result.summary}`);
      }
    }
    if (failures.length > 0)
      throw new Error(
        `${failures.length} of ${results.length} canar${results.length === 1 ? "y" : "ies"} did not get in: ${failures.join(" | ")}`,
      );
  };
}
