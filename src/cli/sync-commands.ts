import { hostname, userInfo } from "node:os";
import { APP_SETTINGS, type Settings } from "../config/settings.js";
import { UsageError, describeError } from "../errors.js";
import { createRuntime, type LedgerChoice, type Runtime } from "../app/runtime.js";
import { findTarget } from "../config/targets.js";
import { runInvocation, type TargetOutcome } from "../sync/invocation.js";
import { renderPlan } from "../sync/render.js";
import { rollbackTarget, type RunResult } from "../sync/run.js";
import type { CliIO, Subcommand } from "./command.js";
import { parseFlags, type FlagSpec, type FlagValues } from "./flags.js";

/**
 * `plan`, `apply`, `history` and `rollback`: the same runs as the functions, from a laptop.
 * Every setting can be given as an environment variable or as its flag; flags win.
 */

const BOOLEAN_SETTINGS = new Set(["SYNC_INCLUDE_REPLICAS", "SYNC_WRITE_WHEN_DEFAULT_ALLOW"]);
const DEFAULT_STATE = ".acr-allowlist-sync/ledger.json";

function optionsConfig(extra: FlagSpec): FlagSpec {
  const options: FlagSpec = { ...extra };
  for (const info of APP_SETTINGS) {
    if (info.flag === undefined) continue;
    options[info.flag.replace(/^--/, "")] = { type: BOOLEAN_SETTINGS.has(info.name) ? "boolean" : "string" };
  }
  return options;
}

const COMMON = {
  state: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

interface ParsedCommand {
  readonly values: FlagValues;
  readonly env: Record<string, string | undefined>;
  readonly ledger: LedgerChoice;
}

function parseCommand(
  command: string,
  args: readonly string[],
  extra: FlagSpec,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ParsedCommand {
  const values = parseFlags(args, optionsConfig({ ...COMMON, ...extra }), command);
  const merged: Record<string, string | undefined> = { ...env };
  for (const info of APP_SETTINGS) {
    if (info.flag === undefined) continue;
    const value = values[info.flag.replace(/^--/, "")];
    if (value === undefined) continue;
    merged[info.name] = typeof value === "boolean" ? String(value) : value;
  }
  const state = typeof values.state === "string" ? values.state : DEFAULT_STATE;
  return { values, env: merged, ledger: state === "blob" ? { kind: "blob" } : { kind: "file", path: state } };
}

function commandHelp(command: string): string {
  const flags = APP_SETTINGS.filter((s) => s.flag !== undefined)
    .map(
      (s) => `  ${s.flag}${BOOLEAN_SETTINGS.has(s.name) ? "" : " <value>"}`.padEnd(34) + `${s.name}: ${s.description}`,
    )
    .join("\n");
  const usage: Record<string, string> = {
    plan: "acr-allowlist-sync plan --registry <resource ID> [--service-tags <url|file>] [--state <file|blob>] [--json]",
    apply:
      "acr-allowlist-sync apply --registry <resource ID> [--service-tags <url|file>] [--state <file|blob>] [--force] [--json]",
    history: "acr-allowlist-sync history --registry <resource ID> [--state <file|blob>] [--json]",
    rollback:
      "acr-allowlist-sync rollback --registry <resource ID> --to <audit id> [--yes] [--state <file|blob>] [--json]",
  };
  return `usage: ${usage[command] ?? command}

  --state <file|blob>             Ledger: a local JSON file (default ${DEFAULT_STATE}) or 'blob' for the
                                  function app's ledger in AzureWebJobsStorage (shared ownership).
  --json                          Machine-readable output.
${flags}

Credentials come from DefaultAzureCredential (az login, managed identity, environment).
Exit codes: 0 done or nothing to do, 2 bad usage or configuration, 1 anything else.
`;
}

function actor(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): keep "unknown".
  }
  return `cli:${user}@${hostname()}`;
}

function reportFailures(outcomes: readonly TargetOutcome[], io: CliIO): number {
  let code = 0;
  for (const outcome of outcomes) {
    if (outcome.ok) continue;
    io.stderr.write(`error: ${outcome.target.ref.name}: ${describeError(outcome.error)}\n`);
    code = 1;
  }
  return code;
}

function build(parsed: ParsedCommand): Runtime {
  return createRuntime(parsed.env, { ledger: parsed.ledger });
}

async function planOrApply(mode: "plan" | "apply", args: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(mode, args, mode === "apply" ? { force: { type: "boolean" } } : {}, io.env);
  if (parsed.values.help === true) {
    io.stdout.write(commandHelp(mode));
    return 0;
  }
  const runtime = build(parsed);
  const outcomes = await runInvocation(runtime.settings, runtime.ports, {
    mode,
    trigger: "cli",
    actor: actor(),
    force: parsed.values.force === true,
  });
  const succeeded = outcomes.flatMap((o) => (o.ok ? [o.result] : []));
  if (parsed.values.json === true) {
    const body = succeeded.map((result) =>
      mode === "plan"
        ? result.plan
        : { outcome: result.outcome, auditId: result.auditId, attempts: result.attempts, plan: result.plan },
    );
    io.stdout.write(JSON.stringify(outcomes.length === 1 ? (body[0] ?? null) : body, null, 2) + "\n");
  } else {
    for (const result of succeeded) io.stdout.write(renderPlan(result.plan) + outcomeLine(result) + "\n");
  }
  return reportFailures(outcomes, io);
}

function outcomeLine(result: RunResult): string {
  switch (result.outcome) {
    case "dry-run":
      return "Dry run: nothing was written.\n";
    case "unchanged":
      return "Nothing to do: no write was made.\n";
    case "applied":
      return `Applied${result.attempts > 1 ? " after one re-plan (someone else wrote in between)" : ""}; audit entry ${result.auditId ?? "?"}.\n`;
  }
}

function singleTarget(settings: Settings, values: FlagValues) {
  return findTarget(settings.targets, typeof values.registry === "string" ? values.registry : undefined);
}

async function history(args: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseCommand("history", args, {}, io.env);
  if (parsed.values.help === true) {
    io.stdout.write(commandHelp("history"));
    return 0;
  }
  const runtime = build(parsed);
  const target = singleTarget(runtime.settings, parsed.values);
  const entries = await runtime.ports.ledger.listAudit(target.ref.id);
  if (parsed.values.json === true) {
    io.stdout.write(
      JSON.stringify(
        entries.map(({ plan: _plan, ...entry }) => entry),
        null,
        2,
      ) + "\n",
    );
    return 0;
  }
  if (entries.length === 0) io.stdout.write(`No applied change recorded for ${target.ref.name}.\n`);
  for (const entry of entries) {
    const before = new Set(entry.before.ownedRules);
    const after = new Set(entry.after.ownedRules);
    const adds = [...after].filter((rule) => !before.has(rule)).length;
    const removes = [...before].filter((rule) => !after.has(rule)).length;
    const what =
      entry.operation === "rollback"
        ? `rollback to ${entry.rollbackOf ?? "?"}`
        : `sync from ${entry.source?.fileName ?? "?"}`;
    io.stdout.write(
      `${entry.id}  ${entry.at}  ${what}  +${adds} -${removes}  ${entry.after.ipRules.length} rules  by ${entry.actor}\n`,
    );
  }
  return 0;
}

async function rollback(args: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(
    "rollback",
    args,
    { to: { type: "string" }, yes: { type: "boolean" }, force: { type: "boolean" } },
    io.env,
  );
  if (parsed.values.help === true) {
    io.stdout.write(commandHelp("rollback"));
    return 0;
  }
  if (typeof parsed.values.to !== "string")
    throw new UsageError("acr-allowlist-sync rollback needs --to <audit id>.", {
      remedy: "List the ids with 'acr-allowlist-sync history'.",
    });
  const runtime = build(parsed);
  const target = singleTarget(runtime.settings, parsed.values);
  // A dry run first: without --yes nothing is written.
  const mode = parsed.values.yes === true ? "apply" : "plan";
  const result = await rollbackTarget(target, parsed.values.to, runtime.ports, {
    mode,
    actor: actor(),
    lockWaitMs: runtime.settings.lockWaitMs,
    force: parsed.values.force === true,
  });
  if (parsed.values.json === true) {
    io.stdout.write(
      JSON.stringify({ outcome: result.outcome, auditId: result.auditId, plan: result.plan }, null, 2) + "\n",
    );
  } else {
    io.stdout.write(
      renderPlan(result.plan) +
        outcomeLine(result) +
        (mode === "plan" ? "Re-run with --yes to apply this rollback.\n" : ""),
    );
  }
  return 0;
}

export const planCommand: Subcommand = {
  name: "plan",
  summary: "Dry run: read the registry and the service tags, print the plan, write nothing.",
  usage: commandHelp("plan"),
  run: (args, io) => planOrApply("plan", args, io),
};

export const applyCommand: Subcommand = {
  name: "apply",
  summary: "Plan, then write the registry's IP rules (guards first), verify and record the change.",
  usage: commandHelp("apply"),
  run: (args, io) => planOrApply("apply", args, io),
};

export const historyCommand: Subcommand = {
  name: "history",
  summary: "List the applied changes recorded in the audit trail.",
  usage: commandHelp("history"),
  run: history,
};

export const rollbackCommand: Subcommand = {
  name: "rollback",
  summary: "Restore the owned rules of an audit entry (dry run unless --yes).",
  usage: commandHelp("rollback"),
  run: rollback,
};
