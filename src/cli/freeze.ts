import type { FreezeState } from "../ledger/types.js";
import type { Runtime } from "../app/runtime.js";
import type { TargetConfig } from "../config/settings.js";
import { UsageError } from "../errors.js";
import type { CliIO, Subcommand } from "./command.js";
import { envelope, exitCodeOf, failed, succeeded, type EnvelopeResult } from "./envelope.js";
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

/**
 * `freeze` / `unfreeze`: the timer and `apply` skip a frozen registry (outcome `skipped`), so a
 * rollback or a manual fix sticks. The freeze lives in the ledger store: made with `--state blob`,
 * the function app honours it.
 */

export const REASON = {
  name: "reason",
  type: "string",
  value: "text",
  help: "Why (shown by status, in every skipped run and in telemetry).",
} as const;

const FREEZE: RegistryCommandSpec = {
  name: "freeze",
  synopsis: "freeze --registry <resource ID> --reason <text> [--state <file|blob>] [--json]",
  description:
    "Freeze a registry: the timer and apply skip it (outcome 'skipped', event AllowlistSyncSkipped) until 'unfreeze'. Use --state blob to freeze it for the function app.",
  flags: [...settingFlags(["TARGET_REGISTRIES"]), REASON, STATE_FLAG, JSON_FLAG, HELP_FLAG],
};

const UNFREEZE: RegistryCommandSpec = {
  name: "unfreeze",
  synopsis: "unfreeze --registry <resource ID> [--state <file|blob>] [--json]",
  description: "Lift a freeze: the next timer run or apply syncs the registry again.",
  flags: [...settingFlags(["TARGET_REGISTRIES"]), STATE_FLAG, JSON_FLAG, HELP_FLAG],
};

/** Writes the freeze of every target (undefined lifts it); `applied` when it changed, `unchanged` when not. */
export async function setFreeze(
  runtime: Runtime,
  targets: readonly TargetConfig[],
  freezeFor: ((target: TargetConfig) => FreezeState) | undefined,
): Promise<EnvelopeResult[]> {
  const results: EnvelopeResult[] = [];
  for (const target of targets) {
    const id = target.ref.id;
    try {
      const current = await runtime.ports.ledger.readFreeze(id);
      const next = freezeFor?.(target);
      if (next === undefined && current === undefined) {
        results.push(succeeded(id, "unchanged", null, { freeze: null }));
        continue;
      }
      await runtime.ports.ledger.writeFreeze(id, next);
      results.push(succeeded(id, "applied", null, { freeze: next ?? null, previous: current ?? null }));
    } catch (error) {
      results.push(failed(id, error, null, { freeze: null }));
    }
  }
  return results;
}

export function freezeState(target: TargetConfig, reason: string): FreezeState {
  return { schemaVersion: 1, registryId: target.ref.id, reason, by: cliActor(), at: new Date().toISOString() };
}

export function reasonFlag(value: string | boolean | undefined, command: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new UsageError(`${command} needs --reason <text>.`, {
      details: { command },
      remedy: "Say why, e.g. --reason 'rolled back during incident 42'; status and every skipped run show it.",
    });
  }
  return value.trim();
}

function text(result: EnvelopeResult): string | undefined {
  if (!result.ok) return undefined;
  const name = registryName(result.registry);
  const freeze = result.freeze as FreezeState | null;
  if (freeze !== null)
    return `Frozen ${name}: the timer and apply skip it until 'acr-allowlist-sync unfreeze'. Reason: ${freeze.reason}\n`;
  return result.outcome === "unchanged"
    ? `${name} was not frozen.\n`
    : `Unfrozen ${name}: the next run syncs it again.\n`;
}

async function freeze(args: readonly string[], io: CliIO): Promise<number> {
  const started = startRegistryCommand(FREEZE, args, io);
  if (started === undefined) return 0;
  requireRegistryFlag(started.parsed, "freeze");
  const reason = reasonFlag(started.parsed.values.reason, "freeze");
  const results = await setFreeze(started.runtime, started.runtime.settings.targets, (t) => freezeState(t, reason));
  const value = envelope("freeze", results);
  printResults(io, value, { json: started.json, text });
  return exitCodeOf(value);
}

async function unfreeze(args: readonly string[], io: CliIO): Promise<number> {
  const started = startRegistryCommand(UNFREEZE, args, io);
  if (started === undefined) return 0;
  requireRegistryFlag(started.parsed, "unfreeze");
  const value = envelope("unfreeze", await setFreeze(started.runtime, started.runtime.settings.targets, undefined));
  printResults(io, value, { json: started.json, text });
  return exitCodeOf(value);
}

export const freezeCommand: Subcommand = {
  name: "freeze",
  summary: "Freeze a registry: the timer and apply skip it until unfreeze.",
  usage: registryCommandHelp(FREEZE),
  envelope: true,
  run: freeze,
};

export const unfreezeCommand: Subcommand = {
  name: "unfreeze",
  summary: "Lift a freeze.",
  usage: registryCommandHelp(UNFREEZE),
  envelope: true,
  run: unfreeze,
};
