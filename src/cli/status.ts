import type { Runtime } from "../app/runtime.js";
import type { TargetConfig } from "../config/settings.js";
import type { AuditEntry, FreezeState, LedgerState } from "../ledger/types.js";
import { formatPrefix, parsePrefix } from "../prefixes/ipv4.js";
import type { LastRun } from "../sync/last-run.js";
import type { CliIO, Subcommand } from "./command.js";
import { envelope, exitCodeOf, failed, succeeded, type EnvelopeResult } from "./envelope.js";
import { count } from "./output.js";
import { printResults, registryName } from "./report.js";
import {
  HELP_FLAG,
  JSON_FLAG,
  registryCommandHelp,
  settingFlags,
  startRegistryCommand,
  STATE_FLAG,
  type RegistryCommandSpec,
} from "./registry-flags.js";

const STATUS: RegistryCommandSpec = {
  name: "status",
  synopsis: "status [--registry <resource ID>] [--state <file|blob>] [--json]",
  description:
    "For each registry: the rules this service owns, people's rules, the last run (any apply, unchanged ones too), the last ledger update and audit entry, whether it is frozen, and drift (owned rules someone removed). Reads only.",
  flags: [
    ...settingFlags(["TARGET_REGISTRIES", "SERVICE_TAGS_CLOUD", "ARM_ENDPOINT", "SYNC_INCLUDE_REPLICAS"]),
    STATE_FLAG,
    JSON_FLAG,
    HELP_FLAG,
  ],
};

export interface RegistryStatus {
  readonly name: string;
  readonly defaultAction: string;
  readonly ruleCount: number;
  readonly ruleLimit: number;
  /** On the registry and in the ledger. */
  readonly ownedRules: readonly string[];
  /** On the registry and not owned (raw values as ARM holds them). */
  readonly peopleRules: readonly string[];
  /** In the ledger, no longer on the registry: someone removed them. */
  readonly drift: readonly string[];
  /** False when no ledger exists: the next run adopts rules inside the current ACR tags. */
  readonly managed: boolean;
  /** The last apply-mode run (timer, queue, CLI), whatever it did; null when none is recorded. */
  readonly lastRun: LastRunView | null;
  readonly ledgerUpdatedAt: string | null;
  readonly lastAudit: Pick<AuditEntry, "id" | "at" | "operation" | "actor"> | null;
  readonly frozen: FreezeState | null;
}

/** A last run as `--json` shows it: every field present, `null` when it does not apply. */
export type LastRunView = Omit<LastRun, "auditId" | "error"> & {
  readonly auditId: string | null;
  readonly error: NonNullable<LastRun["error"]> | null;
};

function canonical(rule: string): string | undefined {
  try {
    return formatPrefix(parsePrefix(rule, { mode: "lenient" }).prefix);
  } catch {
    return undefined;
  }
}

export function statusOf(
  ipRules: readonly string[],
  ledger: LedgerState | undefined,
  audit: readonly AuditEntry[],
  freeze: FreezeState | undefined,
  lastRun: LastRun | undefined,
  facts: { name: string; defaultAction: string; ruleLimit: number },
): RegistryStatus {
  const owned = new Set([...(ledger?.ownedRules ?? []), ...(ledger?.pendingRules ?? [])]);
  const present = new Set(ipRules.flatMap((rule) => canonical(rule) ?? []));
  const last = audit.at(-1);
  return {
    ...facts,
    ruleCount: ipRules.length,
    ownedRules: ipRules.filter((rule) => owned.has(canonical(rule) ?? "")),
    peopleRules: ipRules.filter((rule) => !owned.has(canonical(rule) ?? "")),
    drift: (ledger?.ownedRules ?? []).filter((rule) => !present.has(rule)),
    managed: ledger !== undefined,
    lastRun:
      lastRun === undefined ? null : { ...lastRun, auditId: lastRun.auditId ?? null, error: lastRun.error ?? null },
    ledgerUpdatedAt: ledger?.updatedAt ?? null,
    lastAudit: last === undefined ? null : { id: last.id, at: last.at, operation: last.operation, actor: last.actor },
    frozen: freeze ?? null,
  };
}

async function statusResult(runtime: Runtime, target: TargetConfig): Promise<EnvelopeResult> {
  const { ledger } = runtime.ports;
  try {
    const [snapshot, state, audit, freeze, lastRun] = await Promise.all([
      runtime.ports.registry.read(target.ref, { includeReplicas: target.includeReplicas }),
      ledger.read(target.ref.id),
      ledger.listAudit(target.ref.id),
      ledger.readFreeze(target.ref.id),
      runtime.ports.runs?.read(target.ref.id),
    ]);
    const status = statusOf(snapshot.ipRules, state, audit, freeze, lastRun, {
      name: target.ref.name,
      defaultAction: snapshot.defaultAction,
      ruleLimit: snapshot.ruleLimit,
    });
    return succeeded(target.ref.id, "unchanged", null, { status });
  } catch (error) {
    return failed(target.ref.id, error, null, { status: null });
  }
}

function text(result: EnvelopeResult): string | undefined {
  const status = result.status as RegistryStatus | null | undefined;
  if (!result.ok || status === null || status === undefined) return undefined;
  const lines = [
    `Registry ${registryName(result.registry)} (defaultAction ${status.defaultAction}): ${status.ruleCount} of ${status.ruleLimit} rules`,
    `  Owned by this service: ${count(status.ownedRules.length, "rule")}${status.managed ? "" : " (no ledger yet: the next run adopts rules inside the current ACR tags)"}`,
    `  People's rules: ${count(status.peopleRules.length, "rule")}${status.peopleRules.length > 0 ? ` (${status.peopleRules.join(", ")})` : ""}`,
    `  Drift: ${status.drift.length === 0 ? "none" : `${count(status.drift.length, "owned rule")} removed by someone else (${status.drift.join(", ")}); the next apply re-adds them`}`,
    `  Last run: ${status.lastRun === null ? "none recorded" : lastRunText(status.lastRun)}`,
    `  Ledger updated: ${status.ledgerUpdatedAt ?? "never"}`,
    `  Last audit entry: ${status.lastAudit === null ? "none" : `${status.lastAudit.id} (${status.lastAudit.operation} by ${status.lastAudit.actor})`}`,
    `  Frozen: ${status.frozen === null ? "no" : `yes, by ${status.frozen.by} at ${status.frozen.at}: ${status.frozen.reason}`}`,
  ];
  return lines.join("\n") + "\n";
}

function lastRunText(run: LastRunView): string {
  const how = `${run.outcome} at ${run.at} by ${run.actor} (${(run.durationMs / 1000).toFixed(1)} s)`;
  if (run.error !== null) return `${how}: ${run.error.code}: ${run.error.message}`;
  return run.auditId === null ? how : `${how}, audit entry ${run.auditId}`;
}

async function status(args: readonly string[], io: CliIO): Promise<number> {
  const started = startRegistryCommand(STATUS, args, io);
  if (started === undefined) return 0;
  const results: EnvelopeResult[] = [];
  for (const target of started.runtime.settings.targets) results.push(await statusResult(started.runtime, target));
  const value = envelope("status", results);
  printResults(io, value, { json: started.json, text });
  return exitCodeOf(value);
}

export const statusCommand: Subcommand = {
  name: "status",
  summary: "Owned and people's rules, last run and audit entry, freeze and drift of each registry.",
  usage: registryCommandHelp(STATUS),
  envelope: true,
  run: status,
};
