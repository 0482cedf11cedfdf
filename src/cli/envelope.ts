import { z } from "zod";
import { AllowlistSyncError, describeError, isRefusal, remedyOf } from "../errors.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./command.js";

/**
 * The one JSON document every registry command prints with `--json`, success or failure. Scripts
 * depend on it: add fields, never rename or drop one, and bump `schemaVersion` if a meaning changes.
 *
 *   {"schemaVersion": 1, "command": "plan", "error": null,
 *    "results": [{"registry": "<resource ID>", "ok": true, "outcome": "dry-run", "plan": {...}, "error": null}]}
 *
 * One result per configured registry, in configuration order. Usage and configuration errors (exit 2)
 * print `results: []` and a top-level `error`. Commands may add their own fields to a result
 * (`entries` for history, `auditId` for writes); the six base fields are always there.
 */

export const ENVELOPE_SCHEMA_VERSION = 1;

export const OUTCOMES = ["dry-run", "applied", "unchanged", "refused", "failed", "skipped"] as const;
/** `refused`: a guard stopped it (nothing written). `skipped`: the registry is frozen. */
export type Outcome = (typeof OUTCOMES)[number];

export const envelopeErrorSchema = z.strictObject({
  code: z.string().min(1),
  message: z.string().min(1),
  remedy: z.string().min(1),
});
export type EnvelopeError = z.infer<typeof envelopeErrorSchema>;

export const envelopeResultSchema = z.looseObject({
  registry: z.string().min(1),
  ok: z.boolean(),
  outcome: z.enum(OUTCOMES),
  plan: z.record(z.string(), z.unknown()).nullable(),
  error: envelopeErrorSchema.nullable(),
});
export type EnvelopeResult = z.infer<typeof envelopeResultSchema>;

export const envelopeSchema = z.strictObject({
  schemaVersion: z.literal(ENVELOPE_SCHEMA_VERSION),
  command: z.string(),
  error: envelopeErrorSchema.nullable(),
  results: z.array(envelopeResultSchema),
});
export type Envelope = z.infer<typeof envelopeSchema>;

/** `code`, `message`, `remedy` of any thrown value; never a stack, never an empty remedy. */
export function errorBody(error: unknown): EnvelopeError {
  if (error instanceof AllowlistSyncError) {
    return { code: error.code, message: error.message, remedy: remedyOf(error) };
  }
  return { code: "UnexpectedError", message: describeError(error) || "Unexpected error.", remedy: remedyOf(error) };
}

/** A guard-category error refuses (nothing was written); every other error fails. */
export function outcomeOfError(error: unknown): Extract<Outcome, "refused" | "failed"> {
  return isRefusal(error) ? "refused" : "failed";
}

type Extras = Readonly<Record<string, unknown>>;

export function succeeded(
  registry: string,
  outcome: Exclude<Outcome, "refused" | "failed">,
  plan: object | null,
  extras: Extras = {},
): EnvelopeResult {
  return { registry, ok: true, outcome, plan: plan as EnvelopeResult["plan"], error: null, ...extras };
}

/** A registry that failed or was refused; `plan` when one was computed before the stop. */
export function failed(
  registry: string,
  error: unknown,
  plan: object | null = null,
  extras: Extras = {},
): EnvelopeResult {
  return {
    registry,
    ok: false,
    outcome: outcomeOfError(error),
    plan: plan as EnvelopeResult["plan"],
    error: errorBody(error),
    ...extras,
  };
}

export function envelope(command: string, results: readonly EnvelopeResult[]): Envelope {
  return { schemaVersion: ENVELOPE_SCHEMA_VERSION, command, error: null, results: [...results] };
}

/** Bad usage or configuration: nothing ran, so no result. */
export function usageEnvelope(command: string, error: unknown): Envelope {
  return { schemaVersion: ENVELOPE_SCHEMA_VERSION, command, error: errorBody(error), results: [] };
}

export function serialiseEnvelope(value: Envelope): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/** `plan --detailed-exitcode` only. */
export const EXIT_CHANGES_PENDING = 2;
export const EXIT_WOULD_BE_REFUSED = 3;

/** 0 every registry ok, 1 any failed or refused, 2 usage/configuration error. */
export function exitCodeOf(value: Envelope): number {
  if (value.error !== null) return EXIT_USAGE;
  return value.results.every((result) => result.ok) ? EXIT_OK : EXIT_FAILURE;
}

/**
 * `plan --detailed-exitcode`, terraform's meaning extended: 0 no changes anywhere, 2 changes pending,
 * 3 an apply would be refused by a guard, 1 any error (usage included). Errors win over refusals,
 * refusals over pending changes.
 */
export function detailedExitCodeOf(value: Envelope): number {
  if (value.error !== null) return EXIT_FAILURE;
  if (value.results.some((result) => result.outcome === "failed")) return EXIT_FAILURE;
  if (value.results.some((result) => result.outcome === "refused")) return EXIT_WOULD_BE_REFUSED;
  const changed = value.results.some((result) => (result.plan as { changed?: unknown } | null)?.changed === true);
  return changed ? EXIT_CHANGES_PENDING : EXIT_OK;
}
