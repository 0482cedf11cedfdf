import { z } from "zod";
import type { CanaryDiagnosis } from "./diagnosis.js";
import { RUN_STATUSES, type RunStatus } from "./tasks-schema.js";

/** One canary run and what it means: stored as the registry's last result, sent to telemetry, printed by the CLI. */
export interface CanaryResult extends CanaryDiagnosis {
  readonly schemaVersion: 1;
  readonly registryId: string;
  /** Registry name. */
  readonly registry: string;
  /** ARM location: the region whose agents ran it. */
  readonly region: string;
  readonly runId: string | undefined;
  /** The run's last status; undefined when it could not be scheduled. */
  readonly runStatus: RunStatus | undefined;
  /** When the run was scheduled (ISO 8601). */
  readonly at: string;
  readonly durationMs: number;
  /** `after-apply`, `timer` or `cli`. */
  readonly trigger: string;
  /** The service-tags file the diagnosis used. */
  readonly serviceTagsFile: string | undefined;
}

/** The stored form, validated when read back (a hand-edited or damaged document is refused, not half-read). */
export const canaryResultSchema = z.object({
  schemaVersion: z.literal(1),
  registryId: z.string().min(1).max(400),
  registry: z.string().min(1).max(100),
  region: z.string().max(100),
  runId: z.string().max(64).nullish(),
  runStatus: z.enum(RUN_STATUSES).nullish(),
  at: z.iso.datetime({ offset: true }),
  durationMs: z.number().nonnegative(),
  trigger: z.string().max(100),
  serviceTagsFile: z.string().max(300).nullish(),
  verdict: z.enum(["admitted", "refused", "failed", "inconclusive"]),
  ok: z.boolean(),
  refusedIp: z.string().max(64).nullish(),
  containingTags: z.array(z.string().max(200)).max(5000),
  summary: z.string().max(8192),
  advice: z.string().max(8192),
  warnings: z.array(z.string().max(8192)).max(20),
});

export function canaryResultFrom(data: z.infer<typeof canaryResultSchema>): CanaryResult {
  return {
    ...data,
    runId: data.runId ?? undefined,
    runStatus: data.runStatus ?? undefined,
    serviceTagsFile: data.serviceTagsFile ?? undefined,
    refusedIp: data.refusedIp ?? undefined,
  };
}

/** Absent fields are written as `null`, so every stored document shows every field. */
export function canaryResultToJson(result: CanaryResult): Record<string, unknown> {
  return {
    ...result,
    runId: result.runId ?? null,
    runStatus: result.runStatus ?? null,
    serviceTagsFile: result.serviceTagsFile ?? null,
    refusedIp: result.refusedIp ?? null,
  };
}

/** One line for logs, the CLI and the plan's text form. */
export function renderCanaryResult(result: CanaryResult): string {
  const lines = [
    `Canary ${result.registry} (${result.region}), run ${result.runId ?? "none"} at ${result.at}: ${result.verdict}.`,
    result.summary,
    ...(result.refusedIp === undefined
      ? []
      : [
          `Tags holding ${result.refusedIp}: ${result.containingTags.length === 0 ? "none" : result.containingTags.join(", ")}.`,
        ]),
    `Advice: ${result.advice}`,
    ...result.warnings.map((warning) => `Warning: ${warning}`),
  ];
  return `${lines.join("\n")}\n`;
}

/** Where the last result of each registry is kept (with the ledger; see src/ledger/canary-store.ts). */
export interface CanaryResultStore {
  read(registryId: string): Promise<CanaryResult | undefined>;
  write(result: CanaryResult): Promise<void>;
}
