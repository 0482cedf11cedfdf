#!/usr/bin/env node
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.js";
import { aggregateCommand } from "./aggregate.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exitCodeFor, lazyCommand, type CliIO, type Subcommand } from "./command.js";
import { message } from "./output.js";

/**
 * The subcommands, in help order. Add new ones here (one module per command). The registry
 * commands load the Azure SDKs (ARM, identity, storage, OpenTelemetry: half a second) and zod, so
 * they are listed with `lazyCommand`: imported when one of them runs, never for `--help` or `aggregate`.
 */
const SUBCOMMANDS: readonly Subcommand[] = [
  lazyCommand(
    { name: "plan", summary: "Dry run: read the registry and the service tags, print the plan, write nothing." },
    async () => (await import("./plan-apply.js")).planCommand,
  ),
  lazyCommand(
    {
      name: "apply",
      summary: "Plan, then write the registry's IP rules (guards first), verify and record the change.",
    },
    async () => (await import("./plan-apply.js")).applyCommand,
  ),
  lazyCommand(
    { name: "history", summary: "List the applied changes recorded in the audit trail." },
    async () => (await import("./history.js")).historyCommand,
  ),
  lazyCommand(
    { name: "rollback", summary: "Restore the owned rules of an audit entry (dry run unless --yes)." },
    async () => (await import("./rollback.js")).rollbackCommand,
  ),
  lazyCommand(
    {
      name: "status",
      summary: "Owned and people's rules, last run and audit entry, freeze and drift of each registry.",
    },
    async () => (await import("./status.js")).statusCommand,
  ),
  lazyCommand(
    { name: "freeze", summary: "Freeze a registry: the timer and apply skip it until unfreeze." },
    async () => (await import("./freeze.js")).freezeCommand,
  ),
  lazyCommand(
    { name: "unfreeze", summary: "Lift a freeze." },
    async () => (await import("./freeze.js")).unfreezeCommand,
  ),
  lazyCommand(
    {
      name: "release",
      summary: "Stop managing a registry: forget ownership, or remove the owned rules (--remove --yes).",
    },
    async () => (await import("./release.js")).releaseCommand,
  ),
  lazyCommand(
    {
      name: "regions",
      summary: "List the regions with an AzureContainerRegistry.<Region> tag and their prefix counts.",
      envelope: false,
    },
    async () => (await import("./regions.js")).regionsCommand,
  ),
  aggregateCommand,
  lazyCommand(
    {
      name: "canary",
      summary: "Run the ACR Tasks canary now and print its diagnosis (exit 0 got in, 1 refused or failed).",
    },
    async () => (await import("./canary.js")).canaryCommand,
  ),
];

function topLevelUsage(): string {
  const width = Math.max(...SUBCOMMANDS.map((command) => command.name.length));
  const lines = SUBCOMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`);
  return `Usage: acr-allowlist-sync <command> [flags]

Commands:
${lines.join("\n")}

  --version  Print the version.
  --help     Print this help.

Run 'acr-allowlist-sync <command> --help' for the flags of a command.
`;
}

/** The package version, read next to the built code (dist/src/cli → package.json). */
function version(): string {
  for (const relative of ["../../../package.json", "../../package.json"]) {
    try {
      const parsed = JSON.parse(readFileSync(new URL(relative, import.meta.url), "utf8")) as {
        name?: unknown;
        version?: unknown;
      };
      if (parsed.name === "acr-allowlist-sync" && typeof parsed.version === "string") return parsed.version;
    } catch {
      // Not there from this layout; try the next one.
    }
  }
  return "unknown";
}

/**
 * Runs one CLI invocation and returns its exit code: 0 success, 1 a registry failed or was refused,
 * 2 usage/configuration errors (`plan --detailed-exitcode`: see envelope.ts). Failures print one line
 * on stderr under the `acr-allowlist-sync:` prefix; with --json the envelope is printed even for a
 * usage error. Nothing is thrown.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(topLevelUsage());
    return EXIT_OK;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    io.stdout.write(`acr-allowlist-sync ${version()}\n`);
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
    // The envelope module brings zod: loaded for a failure only, not on every start.
    const { errorBody, serialiseEnvelope, usageEnvelope } = await import("./envelope.js");
    const body = errorBody(error);
    message(io.stderr, `${body.message} ${body.remedy}`);
    // Flags could not be parsed: look for --json and --detailed-exitcode in the raw arguments.
    if (rest.includes("--json") && (command === undefined || command.envelope === true))
      io.stdout.write(serialiseEnvelope(usageEnvelope(name ?? "", error)));
    const code = name === undefined || command === undefined ? EXIT_USAGE : exitCodeFor(error);
    return rest.includes("--detailed-exitcode") && name === "plan" ? EXIT_FAILURE : code;
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
  process.exitCode = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    handleSignals: true,
  });
}
