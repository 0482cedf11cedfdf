#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describeError, UsageError } from "../errors.js";
import { aggregateCommand } from "./aggregate.js";
import { EXIT_OK, EXIT_USAGE, exitCodeFor, lazyCommand, type CliIO, type Subcommand } from "./command.js";

// The sync commands load the Azure SDKs (ARM, identity, storage, OpenTelemetry: half a second):
// imported when one of them runs, never for `--help` or `aggregate`.
const syncCommands = () => import("./sync-commands.js");

/** The subcommands, in help order. Add new ones here; a command that builds the runtime goes through lazyCommand. */
const SUBCOMMANDS: readonly Subcommand[] = [
  lazyCommand(
    "plan",
    "Dry run: read the registry and the service tags, print the plan, write nothing.",
    async () => (await syncCommands()).planCommand,
  ),
  lazyCommand(
    "apply",
    "Plan, then write the registry's IP rules (guards first), verify and record the change.",
    async () => (await syncCommands()).applyCommand,
  ),
  lazyCommand(
    "history",
    "List the applied changes recorded in the audit trail.",
    async () => (await syncCommands()).historyCommand,
  ),
  lazyCommand(
    "rollback",
    "Restore the owned rules of an audit entry (dry run unless --yes).",
    async () => (await syncCommands()).rollbackCommand,
  ),
  aggregateCommand,
];

function topLevelUsage(): string {
  const width = Math.max(...SUBCOMMANDS.map((command) => command.name.length));
  const lines = SUBCOMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`);
  return `Usage: acr-allowlist-sync <command> [flags]\n\nCommands:\n${lines.join("\n")}\n\nRun 'acr-allowlist-sync <command> --help' for the flags of a command.\n`;
}

/**
 * Runs one CLI invocation and returns its exit code: 0 success, 2 usage/configuration/input
 * errors, 1 every other failure. Failures print exactly one line on stderr; nothing is thrown.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(topLevelUsage());
    return EXIT_OK;
  }
  const command = SUBCOMMANDS.find((candidate) => candidate.name === name);
  try {
    if (name === undefined) {
      throw new UsageError("No command given.", {
        remedy: `Commands: ${SUBCOMMANDS.map((c) => c.name).join(", ")}; run 'acr-allowlist-sync --help'.`,
      });
    }
    if (command === undefined) {
      throw new UsageError(`Unknown command '${name}'.`, {
        remedy: `Commands: ${SUBCOMMANDS.map((c) => c.name).join(", ")}; run 'acr-allowlist-sync --help'.`,
      });
    }
    return await command.run(rest, io);
  } catch (error) {
    io.stderr.write(`acr-allowlist-sync: ${describeError(error).replace(/\s*\n\s*/g, " ")}\n`);
    return name === undefined || command === undefined ? EXIT_USAGE : exitCodeFor(error);
  }
}

/** True when this file is the process entry point, also through npm's bin symlink. */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `acr-allowlist-sync aggregate ... | head`: a closed pipe is the reader's choice, not a crash.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
  process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
}
