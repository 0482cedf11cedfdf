import type { Plan } from "../sync/plan.js";
import { renderPlan } from "../sync/render.js";
import type { CliIO } from "./command.js";
import { serialiseEnvelope, type Envelope, type EnvelopeResult } from "./envelope.js";
import { coloursFor, envOf, message } from "./output.js";

export interface PrintOptions {
  readonly json: boolean;
  readonly showUnchanged?: boolean;
  /** Text for a result instead of its plan (history's entries, status). */
  readonly text?: (result: EnvelopeResult) => string | undefined;
  /** Registries whose plan was printed already (before their write). */
  readonly planPrinted?: ReadonlySet<string> | undefined;
  /** A line after the outcome line (rollback's "Re-run with --yes"). */
  readonly footer?: (result: EnvelopeResult) => string | undefined;
}

/** The registry's name, the last segment of its resource ID. */
export function registryName(id: string): string {
  return id.replace(/\/+$/, "").split("/").pop() ?? id;
}

/**
 * The envelope as the command's output: with --json exactly one JSON document on stdout and nothing
 * else; otherwise each result's plan (or text) on stdout and each error as one line on stderr.
 */
export function printResults(io: CliIO, value: Envelope, options: PrintOptions): void {
  if (options.json) {
    io.stdout.write(serialiseEnvelope(value));
    // stdout is the script's; a person watching still sees why on stderr.
    for (const result of value.results) errorLine(io, result);
    return;
  }
  const colours = coloursFor(io.stdout, envOf(io));
  for (const result of value.results) {
    const text = options.text?.(result);
    if (text !== undefined) io.stdout.write(text);
    else if (result.plan !== null && options.planPrinted?.has(result.registry) !== true)
      io.stdout.write(
        renderPlan(result.plan as unknown as Plan, { showUnchanged: options.showUnchanged === true, colours }),
      );
    const line = outcomeLine(result);
    if (line !== undefined) io.stdout.write(line + "\n");
    const footer = options.footer?.(result);
    if (footer !== undefined) io.stdout.write(footer + "\n");
    errorLine(io, result);
  }
}

function errorLine(io: CliIO, result: EnvelopeResult): void {
  if (result.error === null) return;
  message(io.stderr, `${registryName(result.registry)}: ${result.error.message} ${result.error.remedy}`);
}

function outcomeLine(result: EnvelopeResult): string | undefined {
  switch (result.outcome) {
    case "dry-run":
      return "Dry run: nothing was written.";
    case "unchanged":
      return result.plan === null ? undefined : "Nothing to do: no write was made.";
    case "applied": {
      const attempts = typeof result.attempts === "number" ? result.attempts : 1;
      const auditId = typeof result.auditId === "string" ? result.auditId : "?";
      return `Applied${attempts > 1 ? " after one re-plan (someone else wrote in between)" : ""}; audit entry ${auditId}.`;
    }
    case "refused":
      return result.plan === null ? undefined : "Refused by a guard: nothing was written.";
    case "skipped":
      return `Skipped ${registryName(result.registry)}: ${typeof result.reason === "string" ? result.reason : "frozen"}.`;
    case "failed":
      return undefined;
  }
}
