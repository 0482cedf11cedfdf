import { createRuntime } from "../app/runtime.js";
import { findTarget } from "../config/targets.js";
import { UsageError } from "../errors.js";
import { rollbackTarget } from "../sync/run.js";
import type { CliIO, Subcommand } from "./command.js";
import { envelope, exitCodeOf, type EnvelopeResult } from "./envelope.js";
import { EXIT_FAILURE } from "./command.js";
import { freezeState, REASON, reasonFlag, setFreeze } from "./freeze.js";
import { resultOf } from "./plan-apply.js";
import { envOf } from "./output.js";
import {
  cliActor,
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

const ROLLBACK: RegistryCommandSpec = {
  name: "rollback",
  synopsis: "rollback --registry <resource ID> --to <audit id> [--yes] [--freeze] [--state <file|blob>] [--json]",
  description:
    "Restore the owned rules an audit entry recorded (people's rules untouched, same guards). A dry run unless --yes.",
  flags: [
    ...settingFlags(),
    STATE_FLAG,
    {
      name: "to",
      type: "string",
      value: "audit id",
      help: "The audit entry to restore ('acr-allowlist-sync history' lists them).",
    },
    { name: "yes", type: "boolean", help: "Write the rollback; without it nothing is written." },
    { name: "force", type: "boolean", help: "Let the rollback pass the mass-removal guard." },
    {
      name: "freeze",
      type: "boolean",
      help: "Also freeze the registry (before writing), so the timer does not undo the rollback.",
    },
    { ...REASON, help: "The freeze's reason (default: 'rolled back to <audit id>')." },
    JSON_FLAG,
    HELP_FLAG,
  ],
};

async function rollback(args: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseRegistryCommand(ROLLBACK, args, envOf(io));
  if (parsed.values.help === true) {
    io.stdout.write(registryCommandHelp(ROLLBACK));
    return 0;
  }
  const to = parsed.values.to;
  if (typeof to !== "string" || to.trim() === "")
    throw new UsageError("rollback needs --to <audit id>.", {
      remedy: "List the ids with 'acr-allowlist-sync history'.",
    });
  writeWarnings(io.stderr, parsed.warnings);
  const runtime = createRuntime(parsed.env, { ledger: parsed.ledger });
  const target = findTarget(
    runtime.settings.targets,
    typeof parsed.values.registry === "string" ? parsed.values.registry : undefined,
  );
  // A dry run first: without --yes nothing is written.
  const mode = parsed.values.yes === true ? "apply" : "plan";
  let result: EnvelopeResult;
  const freeze = mode === "apply" && parsed.values.freeze === true;
  if (freeze) {
    const reason =
      typeof parsed.values.reason === "string" ? reasonFlag(parsed.values.reason, "rollback") : `rolled back to ${to}`;
    const [frozen] = await setFreeze(runtime, [target], (t) => freezeState(t, reason));
    if (frozen !== undefined && !frozen.ok) {
      printResults(io, envelope("rollback", [frozen]), { json: parsed.values.json === true });
      return EXIT_FAILURE;
    }
  }
  try {
    const run = await rollbackTarget(target, to, runtime.ports, {
      mode,
      actor: cliActor(),
      lockWaitMs: runtime.settings.lockWaitMs,
      force: parsed.values.force === true,
    });
    result = { ...resultOf({ target, ok: true, result: run, durationMs: 0 }), frozen: freeze };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    result = resultOf({ target, ok: false, error, durationMs: 0 });
  }
  const value = envelope("rollback", [result]);
  printResults(io, value, {
    json: parsed.values.json === true,
    footer: (r) =>
      mode === "plan" && r.ok
        ? `Re-run with --yes to apply this rollback${parsed.values.freeze === true ? " and freeze the registry" : ""}.`
        : freeze
          ? `Frozen: the timer and apply skip ${target.ref.name} until 'acr-allowlist-sync unfreeze'.`
          : undefined,
  });
  return exitCodeOf(value);
}

export const rollbackCommand: Subcommand = {
  name: "rollback",
  summary: "Restore the owned rules of an audit entry (dry run unless --yes).",
  usage: registryCommandHelp(ROLLBACK),
  envelope: true,
  run: rollback,
};
