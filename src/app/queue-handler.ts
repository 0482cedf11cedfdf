import type { InvocationContext } from "@azure/functions";
import { renderCanaryResult } from "../canary/result.js";
import { ConfigError, describeError } from "../errors.js";
import { handlePoisonMessage, handleSyncMessage } from "../fanout/worker.js";
import type { Runtime } from "./runtime.js";
import { createKeyedLimiter } from "../sync/bounded.js";

/** `dequeueCount` from the trigger metadata (its first letter is lower-cased by the worker; parse defensively, azure-facts §9). */
export function dequeueCountOf(context: InvocationContext): number {
  const metadata = context.triggerMetadata ?? {};
  const raw = metadata.dequeueCount ?? metadata.DequeueCount;
  const count = typeof raw === "number" ? raw : typeof raw === "string" ? Number(raw) : Number.NaN;
  return Number.isInteger(count) && count > 0 ? count : 1;
}

function fanoutOf(runtime: Runtime): NonNullable<Runtime["fanout"]> {
  if (runtime.fanout === undefined)
    throw new ConfigError("The queue functions need the blob ledger (AzureWebJobsStorage).", {
      remedy: "Set AzureWebJobsStorage or AzureWebJobsStorage__blobServiceUri.",
    });
  return runtime.fanout;
}

/**
 * One registry per message. Throwing is how a queue function asks the host for a retry: after
 * `maxDequeueCount` deliveries the host moves the message to the poison queue.
 */
export function createQueueHandler(runtime: Runtime) {
  // One per process: the messages one instance handles at once share the per-subscription cap.
  const subscriptionLimiter = createKeyedLimiter(runtime.settings.maxPerSubscription);
  return async (message: unknown, context: InvocationContext): Promise<void> => {
    const dequeueCount = dequeueCountOf(context);
    const result = await handleSyncMessage(
      runtime.settings,
      { ...runtime.ports, fanoutStore: fanoutOf(runtime).store, subscriptionLimiter },
      message,
      { dequeueCount },
    );
    switch (result.kind) {
      case "duplicate":
        context.log(
          `${result.message.registryId}: run ${result.message.runId} already synced it; duplicate delivery skipped.`,
        );
        return;
      case "dropped":
        context.error(`Dropped a message that cannot be synced: ${describeError(result.error)}`);
        return;
      case "done": {
        const { outcome } = result;
        if (!outcome.ok) {
          context.warn(`${outcome.target.ref.name}: ${describeError(outcome.error)}`);
          return;
        }
        context.log(`${outcome.target.ref.name}: ${outcome.result.outcome}`);
        // As on the timer: a refused canary is reported (event, alert); the sync itself succeeded.
        if (outcome.canary?.ok === true) context.log(renderCanaryResult(outcome.canary));
        else if (outcome.canary !== undefined) context.warn(renderCanaryResult(outcome.canary));
        return;
      }
      case "retry": {
        const line = `${result.outcome.target.ref.name} (delivery ${dequeueCount}): ${result.outcome.ok ? "" : describeError(result.outcome.error)}`;
        if (result.finalAttempt) context.error(line);
        else context.warn(line);
        throw new Error(line);
      }
    }
  };
}

export function createPoisonHandler(runtime: Runtime) {
  return async (message: unknown, context: InvocationContext): Promise<void> => {
    await handlePoisonMessage(runtime.ports, message);
    context.error(
      `A sync message was poisoned: ${typeof message === "string" ? message.slice(0, 500) : JSON.stringify(message).slice(0, 500)}`,
    );
  };
}
