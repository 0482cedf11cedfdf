import { UsageError } from "../errors.js";
import { forgetOwnership, releaseTarget } from "../sync/run.js";
import type { CliIO, Subcommand } from "./command.js";
import { envelope, exitCodeOf, failed, succeeded, type EnvelopeResult } from "./envelope.js";
import { freezeState, setFreeze } from "./freeze.js";
import { resultOf } from "./plan-apply.js";
import { printResults, registryName } from "./report.js";
import {
  cliActor,
  HELP_FLAG,
  JSON_FLAG,
  registryCommandHelp,
  requireRegistryFlag,
  settingFlags,
  startRegistryCommand,
  STATE_FLAG,
  type RegistryCommandSpec,
} from "./registry-flags.js";

const RELEASE: RegistryCommandSpec = {
  name: "release",
  synopsis: "release --registry <resource ID> [--remove [--yes]] [--state <file|blob>] [--json]",
  description: `Stop managing a registry. Without --remove: forget ownership; every rule stays, as people's.
With --remove: remove the rules this service owns in one PATCH (people's rules stay; a dry run unless --yes).
Either way the registry is then frozen, so the timer leaves it alone: remove it from TARGET_REGISTRIES.`,
  flags: [
    ...settingFlags([
      "TARGET_REGISTRIES",
      "SERVICE_TAGS_CLOUD",
      "ARM_ENDPOINT",
      "SYNC_OPERATION_TIMEOUT_MS",
      "SYNC_LOCK_WAIT_MS",
    ]),
    { name: "remove", type: "boolean", help: "Also remove the owned rules (one PATCH); a dry run unless --yes." },
    { name: "yes", type: "boolean", help: "With --remove: write it." },
    STATE_FLAG,
    JSON_FLAG,
    HELP_FLAG,
  ],
};

async function release(args: readonly string[], io: CliIO): Promise<number> {
  const started = startRegistryCommand(RELEASE, args, io);
  if (started === undefined) return 0;
  const { parsed, runtime } = started;
  requireRegistryFlag(parsed, "release");
  const remove = parsed.values.remove === true;
  if (parsed.values.yes === true && !remove)
    throw new UsageError("release: --yes confirms --remove; without --remove nothing is removed.", {
      remedy: "Add --remove to remove the owned rules, or drop --yes to only forget ownership.",
    });
  const dryRun = remove && parsed.values.yes !== true;
  const options = {
    mode: dryRun ? ("plan" as const) : ("apply" as const),
    actor: cliActor(),
    lockWaitMs: runtime.settings.lockWaitMs,
  };
  const results: EnvelopeResult[] = [];
  for (const target of runtime.settings.targets) {
    let result: EnvelopeResult;
    try {
      if (remove) {
        result = resultOf({
          target,
          ok: true,
          result: await releaseTarget(target, runtime.ports, options),
          durationMs: 0,
        });
      } else {
        const auditId = await forgetOwnership(target, runtime.ports, options);
        result = succeeded(target.ref.id, "applied", null, { auditId });
      }
    } catch (error) {
      result = resultOf({ target, ok: false, error, durationMs: 0 });
    }
    if (result.ok && !dryRun) {
      const [frozen] = await setFreeze(runtime, [target], (t) =>
        freezeState(t, "released: this service no longer manages it; remove it from TARGET_REGISTRIES"),
      );
      if (frozen !== undefined && !frozen.ok)
        result = failed(target.ref.id, new Error(frozen.error?.message ?? "freeze failed"));
    }
    results.push(result);
  }
  const value = envelope("release", results);
  printResults(io, value, {
    json: started.json,
    footer: (r) => {
      if (!r.ok) return undefined;
      const name = registryName(r.registry);
      if (dryRun) return "Re-run with --yes to remove the owned rules.";
      return `Released ${name}: ${remove ? "its owned rules are removed" : "every rule stays, as people's"}; it is frozen so the timer leaves it alone. Remove it from TARGET_REGISTRIES.`;
    },
  });
  return exitCodeOf(value);
}

export const releaseCommand: Subcommand = {
  name: "release",
  summary: "Stop managing a registry: forget ownership, or remove the owned rules (--remove --yes).",
  usage: registryCommandHelp(RELEASE),
  envelope: true,
  run: release,
};
