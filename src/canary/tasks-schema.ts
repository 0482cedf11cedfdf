import { z } from "zod";

/**
 * The ACR Tasks wire format the canary relies on (azure-facts §11), checked at the boundary.
 * `@azure/arm-containerregistry` 12 no longer has these operations, so there is no SDK model in
 * between: these schemas are the only thing standing between ARM's JSON and our decisions.
 */

/** The API version of scheduleRun, runs and listLogSasUrl (12.x's 2025-11-01 has no Tasks). */
export const TASKS_API_VERSION = "2019-06-01-preview";

export const RUN_STATUSES = [
  "Queued",
  "Started",
  "Running",
  "Succeeded",
  "Failed",
  "Canceled",
  "Error",
  "Timeout",
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const TERMINAL_RUN_STATUSES: ReadonlySet<RunStatus> = new Set([
  "Succeeded",
  "Failed",
  "Canceled",
  "Error",
  "Timeout",
]);

const timestamp = z.string().min(1).max(64).nullish();

/** A Run; its fields are under `properties` on the wire. */
export const runDocumentSchema = z.object({
  properties: z.object({
    runId: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9-]+$/, "not a run ID"),
    status: z.enum(RUN_STATUSES),
    runType: z.string().nullish(),
    createTime: timestamp,
    startTime: timestamp,
    finishTime: timestamp,
    runErrorMessage: z.string().max(4096).nullish(),
  }),
});

export const logLinkSchema = z.object({
  logLink: z.url({ protocol: /^https$/, error: "expected an https SAS URL" }),
  logArtifactLink: z.string().nullish(),
});

/** The body of an `Azure-AsyncOperation` poll. */
export const asyncOperationSchema = z.object({
  status: z.string().min(1),
  error: z.object({ code: z.string().nullish(), message: z.string().nullish() }).nullish(),
});

export interface CanaryRun {
  readonly runId: string;
  readonly status: RunStatus;
  readonly createTime: string | undefined;
  readonly startTime: string | undefined;
  readonly finishTime: string | undefined;
  readonly runErrorMessage: string | undefined;
}

export function toCanaryRun(document: z.infer<typeof runDocumentSchema>): CanaryRun {
  const p = document.properties;
  return {
    runId: p.runId,
    status: p.status,
    createTime: p.createTime ?? undefined,
    startTime: p.startTime ?? undefined,
    finishTime: p.finishTime ?? undefined,
    runErrorMessage: p.runErrorMessage ?? undefined,
  };
}

/** The one-step task of the quick run: a `cmd` step on a public MCR image, so nothing is pulled from the registry. */
export const CANARY_TASK_YAML = `version: v1.1.0
steps:
  - cmd: mcr.microsoft.com/hello-world
`;

/**
 * The spec's minimum run timeout (seconds). The agent logs in to the registry before the step,
 * so a refusal shows within seconds; the run never needs more.
 */
export const CANARY_RUN_TIMEOUT_SECONDS = 300;

/** The `EncodedTaskRunRequest` body (the spec example omits `type`; clients send it). */
export function encodedTaskRunRequest(): Record<string, unknown> {
  return {
    type: "EncodedTaskRunRequest",
    encodedTaskContent: Buffer.from(CANARY_TASK_YAML, "utf8").toString("base64"),
    platform: { os: "Linux" },
    timeout: CANARY_RUN_TIMEOUT_SECONDS,
    agentConfiguration: { cpu: 2 },
    isArchiveEnabled: false,
  };
}
