import { setTimeout as delay } from "node:timers/promises";
import type { TargetConfig } from "../config/settings.js";
import { AllowlistSyncError, CanaryLogUnreadableError } from "../errors.js";
import type { RegistryGateway } from "../registry/types.js";
import type { ServiceTagsDocument } from "../servicetags/schema.js";
import { diagnoseCanary, type DiagnosisInput } from "./diagnosis.js";
import type { CanaryResult } from "./result.js";
import type { TasksGateway } from "./tasks-client.js";
import { CANARY_RUN_TIMEOUT_SECONDS, TERMINAL_RUN_STATUSES, type CanaryRun } from "./tasks-schema.js";

export interface CanaryPorts {
  readonly registry: RegistryGateway;
  readonly tasks: TasksGateway;
  readonly now?: () => Date;
}

export interface CanaryRunOptions {
  /** How long to wait for a terminal state, scheduling included. */
  readonly deadlineMs: number;
  /** Between two reads of the run. */
  readonly pollIntervalMs: number;
  readonly trigger: string;
  /** The current service-tags file, for the diagnosis; undefined when it could not be fetched. */
  readonly document: ServiceTagsDocument | undefined;
  readonly signal?: AbortSignal;
}

/**
 * One canary on one registry: read the registry (its rules and bypass flag, for the diagnosis),
 * schedule the quick run, follow it to a terminal state or the deadline, read the log unless it
 * succeeded, and diagnose. A run that cannot be scheduled is a result (quota, permissions,
 * platform), not an exception; a registry that cannot be read is an exception (nothing ran).
 */
export async function runCanary(
  target: TargetConfig,
  ports: CanaryPorts,
  options: CanaryRunOptions,
): Promise<CanaryResult> {
  const now = ports.now ?? (() => new Date());
  const { ref } = target;
  const signal = options.signal;
  const snapshot = await ports.registry.read(ref, {
    includeReplicas: target.includeReplicas,
    ...(signal ? { signal } : {}),
  });
  const allowedRegions = [
    ...new Set(
      [...(target.regions ?? [snapshot.location]), ...(target.includeReplicas ? snapshot.replicaLocations : [])].map(
        (region) => region.toLowerCase(),
      ),
    ),
  ];
  const started = Date.now();
  const deadline = started + options.deadlineMs;
  const at = now().toISOString();
  const callOptions = signal === undefined ? {} : { signal };

  let run: CanaryRun | undefined;
  let scheduleError: DiagnosisInput["scheduleError"];
  let deadlineMs: number | undefined;
  let log: DiagnosisInput["log"];
  try {
    run = await ports.tasks.scheduleRun(ref, callOptions);
  } catch (error) {
    if (!(error instanceof AllowlistSyncError)) throw error;
    scheduleError = { code: error.code, message: error.message, remedy: error.remedy };
  }
  if (run !== undefined) {
    while (!TERMINAL_RUN_STATUSES.has(run.status)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        deadlineMs = options.deadlineMs;
        break;
      }
      await delay(Math.min(options.pollIntervalMs, left), undefined, callOptions);
      run = await ports.tasks.getRun(ref, run.runId, callOptions);
    }
    if (run.status !== "Succeeded") {
      try {
        log = { text: await ports.tasks.readLog(ref, run.runId, callOptions) };
      } catch (error) {
        if (error instanceof CanaryLogUnreadableError)
          log = { unreadable: String(error.details.reason ?? error.message) };
        else if (error instanceof AllowlistSyncError) log = { unreadable: `${error.code}: ${error.message}` };
        else throw error;
      }
    }
  }

  const diagnosis = diagnoseCanary({
    registry: ref.name,
    location: snapshot.location,
    at,
    run,
    scheduleError,
    deadlineMs,
    log,
    registryState: {
      defaultAction: snapshot.defaultAction,
      ipRules: snapshot.ipRules,
      networkRuleBypassAllowedForTasks: snapshot.networkRuleBypassAllowedForTasks,
    },
    allowedRegions,
    serviceTags:
      options.document === undefined
        ? undefined
        : { fileName: options.document.origin.fileName, values: options.document.file.values },
    runTimeoutSeconds: CANARY_RUN_TIMEOUT_SECONDS,
  });
  return {
    schemaVersion: 1,
    registryId: ref.id,
    registry: ref.name,
    region: snapshot.location,
    runId: run?.runId,
    runStatus: run?.status,
    at,
    durationMs: Date.now() - started,
    trigger: options.trigger,
    serviceTagsFile: options.document?.origin.fileName,
    ...diagnosis,
  };
}
