import { createRuntime } from "../app/runtime.js";
import type { AuditEntry } from "../ledger/types.js";
import type { CliIO, Subcommand } from "./command.js";
import { envelope, exitCodeOf, failed, succeeded, type EnvelopeResult } from "./envelope.js";
import { envOf } from "./output.js";
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
import { printResults, registryName } from "./report.js";

/** history reads the ledger only: it takes no sync setting, so a stray one is an error, not ignored. */
const HISTORY: RegistryCommandSpec = {
  name: "history",
  synopsis: "history --registry <resource ID> [--state <file|blob>] [--json]",
  description:
    "List the applied changes recorded in the audit trail, oldest first. With --json each result holds its 'entries'.",
  flags: [...settingFlags(["TARGET_REGISTRIES"]), STATE_FLAG, JSON_FLAG, HELP_FLAG],
};

type ListedEntry = Omit<AuditEntry, "plan">;

function line(entry: ListedEntry): string {
  const before = new Set(entry.before.ownedRules);
  const after = new Set(entry.after.ownedRules);
  const adds = [...after].filter((rule) => !before.has(rule)).length;
  const removes = [...before].filter((rule) => !after.has(rule)).length;
  const what =
    entry.operation === "rollback"
      ? `rollback to ${entry.rollbackOf ?? "?"}`
      : entry.operation === "release"
        ? "release (ownership given up)"
        : `sync from ${entry.source?.fileName ?? "?"}`;
  return `${entry.id}  ${entry.at}  ${what}  +${adds} -${removes}  ${entry.after.ipRules.length} rules  by ${entry.actor}\n`;
}

function text(result: EnvelopeResult): string | undefined {
  if (!result.ok) return undefined;
  const entries = (result.entries ?? []) as ListedEntry[];
  if (entries.length === 0) return `No applied change recorded for ${registryName(result.registry)}.\n`;
  return entries.map(line).join("");
}

async function history(args: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseRegistryCommand(HISTORY, args, envOf(io));
  if (parsed.values.help === true) {
    io.stdout.write(registryCommandHelp(HISTORY));
    return 0;
  }
  writeWarnings(io.stderr, parsed.warnings);
  const runtime = createRuntime(parsed.env, { ledger: parsed.ledger });
  const results: EnvelopeResult[] = [];
  for (const target of runtime.settings.targets) {
    try {
      const entries = await runtime.ports.ledger.listAudit(target.ref.id);
      // The plans are large and in each entry's own document; `history` lists, it does not dump.
      const listed: ListedEntry[] = entries.map(({ plan: _plan, ...entry }) => entry);
      results.push(succeeded(target.ref.id, "unchanged", null, { entries: listed }));
    } catch (error) {
      results.push(failed(target.ref.id, error, null, { entries: [] }));
    }
  }
  const value = envelope("history", results);
  printResults(io, value, { json: parsed.values.json === true, text });
  return exitCodeOf(value);
}

export const historyCommand: Subcommand = {
  name: "history",
  summary: "List the applied changes recorded in the audit trail.",
  usage: registryCommandHelp(HISTORY),
  envelope: true,
  run: history,
};
