import { createRuntime } from "../app/runtime.js";
import { GuardError } from "../errors.js";
import { guardErrorFor } from "../sync/guards.js";
import { runInvocation, type TargetOutcome } from "../sync/invocation.js";
import type { CliIO, Subcommand } from "./command.js";
import {
  detailedExitCodeOf,
  envelope,
  exitCodeOf,
  failed,
  succeeded,
  type Envelope,
  type EnvelopeResult,
} from "./envelope.js";
import type { FlagDoc } from "./flag-docs.js";
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
import { startApplySession } from "./apply-session.js";
import { printResults } from "./report.js";
import { resolveRunTargets } from "../discovery/discover.js";
import { UsageError } from "../errors.js";
import { integerFlag } from "./flags.js";
import { withProcessWideLock } from "../ledger/process-lock.js";

export const DEFAULT_CONCURRENCY = 4;
const MAX_CONCURRENCY = 64;

const DISCOVER: FlagDoc = {
  name: "discover",
  type: "boolean",
  help: "Also run every Premium registry carrying the discovery tag (--discovery-tag / TARGET_DISCOVERY_TAG), found with Azure Resource Graph in --discovery-scopes.",
};
const CONCURRENCY: FlagDoc = {
  name: "concurrency",
  type: "string",
  value: "n",
  help: `Registries run at the same time, 1-${MAX_CONCURRENCY} (default ${DEFAULT_CONCURRENCY}); per subscription at most --max-per-subscription.`,
};

const SHOW_UNCHANGED: FlagDoc = {
  name: "show-unchanged",
  type: "boolean",
  help: "List every rule that stays as it is (default: their count).",
};

const PLAN: RegistryCommandSpec = {
  name: "plan",
  synopsis:
    "plan (--registry <resource ID> | --discover [--discovery-tag k=v]) [--concurrency n] [--service-tags <url|file>] [--state <file|blob>] [--detailed-exitcode] [--json]",
  description:
    "Dry run: read the registry and the service tags, print the plan and the guards an apply would meet. Writes nothing.",
  flags: [
    ...settingFlags(),
    STATE_FLAG,
    {
      name: "detailed-exitcode",
      type: "boolean",
      help: "Exit 0 no changes anywhere, 2 changes pending, 3 an apply would be refused by a guard, 1 any error.",
    },
    DISCOVER,
    CONCURRENCY,
    SHOW_UNCHANGED,
    JSON_FLAG,
    HELP_FLAG,
  ],
  exitCodes:
    "Exit codes: 0 every registry ok, 1 a registry failed or would be refused, 2 bad usage or configuration;\nwith --detailed-exitcode: 0 no changes, 2 changes pending, 3 an apply would be refused, 1 any error.",
};

const APPLY: RegistryCommandSpec = {
  name: "apply",
  synopsis:
    "apply (--registry <resource ID> | --discover [--discovery-tag k=v]) [--concurrency n] [--service-tags <url|file>] [--state <file|blob>] [--force] [--json]",
  description:
    "Plan, print the plan, then write the registry's IP rules (guards first), verify them and record the change. A frozen registry is skipped.",
  flags: [
    ...settingFlags(),
    STATE_FLAG,
    {
      name: "force",
      type: "boolean",
      help: "Let this run pass the mass-removal and stale-source guards (an operator's decision).",
    },
    { name: "quiet", type: "boolean", short: "q", help: "No progress on stderr while ARM applies the update." },
    DISCOVER,
    CONCURRENCY,
    SHOW_UNCHANGED,
    JSON_FLAG,
    HELP_FLAG,
  ],
};

/** A TargetOutcome as an envelope result: refusals keep the plan they refused. */
export function resultOf(outcome: TargetOutcome): EnvelopeResult {
  const registry = outcome.target.ref.id;
  if (!outcome.ok) {
    const plan = outcome.error instanceof GuardError ? (outcome.error.plan ?? null) : null;
    return failed(registry, outcome.error, plan);
  }
  const { result } = outcome;
  if (result.freeze !== undefined) {
    const freeze = result.freeze;
    return succeeded(registry, "skipped", result.plan, {
      reason: `frozen by ${freeze.by} at ${freeze.at}: ${freeze.reason}; nothing was written ('acr-allowlist-sync unfreeze' lifts it)`,
      freeze,
    });
  }
  if (result.outcome === "dry-run" && result.plan.guards.length > 0) {
    // A plan whose apply a guard would stop: refused, with the plan, so scripts and people see both.
    return failed(registry, guardErrorFor(result.plan, result.plan.guards), result.plan);
  }
  return succeeded(
    registry,
    result.outcome,
    result.plan,
    result.outcome === "dry-run" ? {} : { auditId: result.auditId ?? null, attempts: result.attempts },
  );
}

async function planOrApply(spec: RegistryCommandSpec, args: readonly string[], io: CliIO): Promise<number> {
  const env = envOf(io);
  const parsed = parseRegistryCommand(spec, args, env);
  if (parsed.values.help === true) {
    io.stdout.write(registryCommandHelp(spec));
    return 0;
  }
  writeWarnings(io.stderr, parsed.warnings);
  const concurrency =
    integerFlag(parsed.values, "concurrency", { min: 1, max: MAX_CONCURRENCY }) ?? DEFAULT_CONCURRENCY;
  const discover = parsed.values.discover === true;
  if (!discover && (parsed.values["discovery-tag"] !== undefined || parsed.values["discovery-scopes"] !== undefined)) {
    throw new UsageError(`${spec.name}: --discovery-tag and --discovery-scopes only apply with --discover.`, {
      remedy: `Add --discover, or drop them to run only --registry / TARGET_REGISTRIES.`,
    });
  }
  if (discover && (parsed.env.TARGET_DISCOVERY_TAG ?? "").trim() === "") {
    throw new UsageError(`${spec.name} --discover needs a tag: --discovery-tag key=value or TARGET_DISCOVERY_TAG.`, {
      remedy: "For example: --discover --discovery-tag acr-allowlist-sync=enabled.",
    });
  }
  const built = createRuntime(parsed.env, { ledger: parsed.ledger });
  const runtime =
    parsed.ledger.kind === "file" && concurrency > 1
      ? { ...built, ports: { ...built.ports, ledger: withProcessWideLock(built.ports.ledger) } }
      : built;
  const mode = spec.name === "apply" ? "apply" : "plan";
  const json = parsed.values.json === true;
  const showUnchanged = parsed.values["show-unchanged"] === true;
  const { settings } = runtime;
  // Discovery runs only when asked for: a laptop with TARGET_DISCOVERY_TAG set still plans one --registry quickly.
  const run = discover
    ? await resolveRunTargets(settings, runtime.ports, { trigger: "cli", dryRun: mode === "plan" })
    : { targets: settings.targets, skipped: [], untagged: [] };
  if (run.targets.length === 0 && run.skipped.length === 0) {
    throw new UsageError(
      discover
        ? `${spec.name}: discovery found no registry with the tag ${settings.discovery.tag?.key ?? ""}=${settings.discovery.tag?.value ?? ""}.`
        : `${spec.name}: no registry given: pass --registry (or TARGET_REGISTRIES), or --discover.`,
      { remedy: "Check the tag and --discovery-scopes (the identity needs Reader there)." },
    );
  }
  writeWarnings(
    io.stderr,
    run.untagged.map((id) => `${id} no longer carries the discovery tag: left as it is, not synced any more.`),
  );
  const session =
    mode === "apply" ? startApplySession(io, { json, quiet: parsed.values.quiet === true, showUnchanged }) : undefined;
  let outcomes: TargetOutcome[];
  try {
    outcomes = [
      ...run.skipped,
      ...(await runInvocation(settings, session?.wrap(runtime.ports) ?? runtime.ports, {
        mode,
        trigger: "cli",
        actor: cliActor(),
        force: parsed.values.force === true,
        beforeWrite:
          session === undefined
            ? undefined
            : (_target, plan) => {
                session.beforeWrite(plan);
              },
        targets: run.targets,
        concurrency,
      })),
    ];
  } finally {
    session?.dispose();
  }
  const result: Envelope = envelope(spec.name, outcomes.map(resultOf));
  printResults(io, result, { json, showUnchanged, planPrinted: session?.printed });
  return mode === "plan" && parsed.values["detailed-exitcode"] === true
    ? detailedExitCodeOf(result)
    : exitCodeOf(result);
}

export const planCommand: Subcommand = {
  name: "plan",
  summary: "Dry run: read the registry and the service tags, print the plan, write nothing.",
  usage: registryCommandHelp(PLAN),
  envelope: true,
  run: (args, io) => planOrApply(PLAN, args, io),
};

export const applyCommand: Subcommand = {
  name: "apply",
  summary: "Plan, then write the registry's IP rules (guards first), verify and record the change.",
  usage: registryCommandHelp(APPLY),
  envelope: true,
  run: (args, io) => planOrApply(APPLY, args, io),
};
