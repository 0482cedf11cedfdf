import { createRuntime } from "../app/runtime.js";
import { runCanaryInvocation } from "../canary/invoke.js";
import { renderCanaryResult, type CanaryResult } from "../canary/result.js";
import { describeError, UsageError } from "../errors.js";
import type { CliIO, Subcommand } from "./command.js";
import { envelope, exitCodeOf, type EnvelopeResult } from "./envelope.js";
import { envOf, warn } from "./output.js";
import {
  HELP_FLAG,
  JSON_FLAG,
  parseRegistryCommand,
  registryCommandHelp,
  settingFlags,
  STATE_FLAG,
  writeWarnings,
  type RegistryCommandSpec,
} from "./registry-flags.js";
import { printResults } from "./report.js";

const CANARY: RegistryCommandSpec = {
  name: "canary",
  synopsis: "canary [--registry <resource ID>] [--canary-deadline-ms <ms>] [--state <file|blob>] [--json]",
  description:
    "Run the ACR Tasks canary now: a tiny quick run on the registry, whose agent must get through its firewall. Prints the diagnosis (the refused IP, the service tags holding it, what to do) and stores it as the registry's last result. With --registry it runs on the registries given (the right to run tasks is needed there); without, on the configured canary registries (CANARY_REGISTRIES, CANARY_ON_TARGETS). With --json each result holds its 'canary'.",
  flags: [...settingFlags(), STATE_FLAG, JSON_FLAG, HELP_FLAG],
  exitCodes:
    "Exit codes: 0 the agent got in on every registry, 1 it was refused or the run failed or was inconclusive, 2 bad usage or configuration.",
};

/** The canary as an envelope result: the diagnosis is both the `canary` field and, when not ok, the `error`. */
function resultOf(result: CanaryResult): EnvelopeResult {
  const base = { registry: result.registryId, plan: null, canary: result };
  if (result.ok) return { ...base, ok: true, outcome: "unchanged", error: null };
  const code =
    result.verdict === "refused"
      ? "CanaryRefused"
      : result.verdict === "failed"
        ? "CanaryFailed"
        : "CanaryInconclusive";
  return {
    ...base,
    ok: false,
    // "refused": the firewall refused the agent, and nothing was written, as for a guard.
    outcome: result.verdict === "refused" ? "refused" : "failed",
    error: { code, message: result.summary, remedy: result.advice },
  };
}

async function canary(args: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseRegistryCommand(CANARY, args, envOf(io));
  if (parsed.values.help === true) {
    io.stdout.write(registryCommandHelp(CANARY));
    return 0;
  }
  writeWarnings(io.stderr, parsed.warnings);
  // Explicit means explicit: with --registry, only those registries, not the configured canaries too.
  const explicit = parsed.values.registry !== undefined;
  const env = explicit ? { ...parsed.env, CANARY_REGISTRIES: undefined, CANARY_ON_TARGETS: undefined } : parsed.env;
  const runtime = createRuntime(env, { ledger: parsed.ledger });
  const targets = explicit ? runtime.settings.targets : runtime.settings.targets.filter((t) => t.canary !== undefined);
  const services = runtime.ports.canary;
  if (targets.length === 0 || services === undefined) {
    throw new UsageError("No registry to run the canary on.", {
      remedy: "Give --registry <resource ID>, or configure CANARY_REGISTRIES or CANARY_ON_TARGETS.",
    });
  }
  const { results, sourceError } = await runCanaryInvocation(
    targets,
    { ...runtime.ports, canary: services },
    { trigger: "cli", deadlineMs: runtime.settings.canary.deadlineMs },
  );
  if (sourceError !== undefined)
    warn(
      io.stderr,
      `the service-tags file could not be fetched; the diagnosis names no tags: ${describeError(sourceError)}`,
    );
  const value = envelope("canary", results.map(resultOf));
  printResults(io, value, {
    json: parsed.values.json === true,
    text: (result) => renderCanaryResult(result.canary as CanaryResult),
  });
  return exitCodeOf(value);
}

export const canaryCommand: Subcommand = {
  name: "canary",
  summary: "Run the ACR Tasks canary now and print its diagnosis (exit 0 got in, 1 refused or failed).",
  usage: registryCommandHelp(CANARY),
  envelope: true,
  run: canary,
};
