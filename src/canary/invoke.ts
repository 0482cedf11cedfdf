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
}

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
  if ((options.delayMs ?? 0) > 0) await delay(options.delayMs, undefined, callOptions);
  const now = ports.now ?? (() => new Date());
  const results: CanaryResult[] = [];
  for (const target of targets) {
    const started = Date.now();
    let result: CanaryResult;
    try {
      result = await runCanary(
        target,
        { registry: ports.registry, tasks: ports.canary.tasks, now },
        {
          deadlineMs: options.deadlineMs,
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

function unrunnable(
  target: TargetConfig,
  error: unknown,
  at: string,
  durationMs: number,
  options: CanaryInvocationOptions,
): CanaryResult {
  const remedy = error instanceof AllowlistSyncError ? error.remedy : undefined;
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
    verdict: "failed",
    ok: false,
    refusedIp: undefined,
    containingTags: [],
    summary: `The canary did not run on ${target.ref.name}: ${error instanceof Error ? error.message : String(error)}`,
    advice: `Not an allowlist failure: the registry could not be read. ${remedy ?? "The next canary tries again."}`,
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
