import { createRuntime } from "../app/runtime.js";
import type { Grant } from "../ledger/types.js";
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

/** `grants` reads the ledger only: no registry call, no write. */
const GRANTS: RegistryCommandSpec = {
  name: "grants",
  synopsis: "grants --registry <resource ID> [--state <file|blob>] [--json]",
  description:
    "List the temporary grants recorded in the ledger, soonest expiry first. A grant past its expiry is removed by the next run (timer or apply); until then it shows as expired. With --json each result holds its 'grants'.",
  flags: [...settingFlags(["TARGET_REGISTRIES"]), STATE_FLAG, JSON_FLAG, HELP_FLAG],
};

interface ListedGrant extends Grant {
  /** By this machine's clock; the runs decide on ARM's (see the README). */
  readonly status: "active" | "expired";
}

function remaining(ms: number): string {
  const minutes = Math.round(Math.abs(ms) / 60_000);
  const text =
    minutes >= 1440
      ? `${Math.floor(minutes / 1440)}d ${Math.floor((minutes % 1440) / 60)}h`
      : minutes >= 60
        ? `${Math.floor(minutes / 60)}h ${minutes % 60}m`
        : `${minutes}m`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

function text(result: EnvelopeResult): string | undefined {
  if (!result.ok) return undefined;
  const grants = (result.grants ?? []) as ListedGrant[];
  const name = registryName(result.registry);
  if (grants.length === 0) return `No temporary grant on ${name}.\n`;
  const width = Math.max(...grants.map((grant) => grant.rule.length));
  const lines = grants.map((grant) => {
    const left = Date.parse(grant.expiresAt) - Date.now();
    const when =
      grant.status === "active"
        ? `until ${grant.expiresAt} (${remaining(left)})`
        : `EXPIRED ${grant.expiresAt} (${remaining(left)}; the next run removes it)`;
    return `  ${grant.rule.padEnd(width)}  ${when}  by ${grant.grantedBy}  [${grant.id}]  ${grant.reason}\n`;
  });
  return `Grants on ${name}:\n${lines.join("")}`;
}

async function grants(args: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseRegistryCommand(GRANTS, args, envOf(io));
  if (parsed.values.help === true) {
    io.stdout.write(registryCommandHelp(GRANTS));
    return 0;
  }
  writeWarnings(io.stderr, parsed.warnings);
  const runtime = createRuntime(parsed.env, { ledger: parsed.ledger });
  const now = Date.now();
  const results: EnvelopeResult[] = [];
  for (const target of runtime.settings.targets) {
    try {
      const ledger = await runtime.ports.ledger.read(target.ref.id);
      const listed: ListedGrant[] = [...(ledger?.grants ?? [])]
        .sort((a, b) => Date.parse(a.expiresAt) - Date.parse(b.expiresAt))
        .map((grant) => ({ ...grant, status: Date.parse(grant.expiresAt) > now ? "active" : "expired" }));
      results.push(succeeded(target.ref.id, "unchanged", null, { grants: listed }));
    } catch (error) {
      results.push(failed(target.ref.id, error, null, { grants: [] }));
    }
  }
  const value = envelope("grants", results);
  printResults(io, value, { json: parsed.values.json === true, text });
  return exitCodeOf(value);
}

export const grantsCommand: Subcommand = {
  name: "grants",
  summary: "List the temporary grants and when they expire.",
  usage: registryCommandHelp(GRANTS),
  envelope: true,
  run: grants,
};
