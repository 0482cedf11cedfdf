import { existsSync } from "node:fs";
import { homedir, hostname, userInfo } from "node:os";
import { isAbsolute, join } from "node:path";
import { APP_SETTINGS } from "../config/settings.js";
import { ConfigError, UsageError } from "../errors.js";
import { createRuntime, type LedgerChoice, type Runtime } from "../app/runtime.js";
import type { CliIO, TextSink } from "./command.js";
import { parseFlags, type FlagValues } from "./flags.js";
import { flagSpecOf, helpLines, type FlagDoc } from "./flag-docs.js";

/**
 * What the registry commands (plan, apply, history, rollback, status, freeze, ...) share: the
 * settings flags (every setting with a `flag` in APP_SETTINGS), `--state`, `--json`, and how the
 * flags become the settings source and the ledger choice. Flags win over the environment.
 */

const BOOLEAN_SETTINGS = new Set(["SYNC_INCLUDE_REPLICAS", "SYNC_WRITE_WHEN_DEFAULT_ALLOW"]);
/** Settings that are numbers: a leading '-' gets our own message naming the flag. */
const NUMBER_SETTINGS = new Set(
  APP_SETTINGS.filter((s) => s.default !== undefined && /^\d+(\.\d+)?$/.test(s.default)).map((s) => s.name),
);
NUMBER_SETTINGS.add("SYNC_MAX_EXTRA_ADDRESSES");
NUMBER_SETTINGS.add("SYNC_MAX_EXTRA_RATIO");

/** The setting flags, as documented flags; `only` keeps the named settings. */
export function settingFlags(only?: readonly string[]): FlagDoc[] {
  return APP_SETTINGS.filter((s) => s.flag !== undefined && (only === undefined || only.includes(s.name))).map(
    (s): FlagDoc => ({
      name: (s.flag ?? "").replace(/^--/, ""),
      type: BOOLEAN_SETTINGS.has(s.name) ? "boolean" : "string",
      ...(BOOLEAN_SETTINGS.has(s.name) ? {} : { value: "value" }),
      help: `${s.name}: ${s.description}`,
      setting: s.name,
    }),
  );
}

export const STATE_FLAG: FlagDoc = {
  name: "state",
  type: "string",
  value: "file|blob",
  help: "Ledger: a local JSON file (default: $XDG_STATE_HOME/acr-allowlist-sync/ledger.json, else ~/.local/state/...) or 'blob' for the function app's ledger in AzureWebJobsStorage (shared ownership).",
};
export const JSON_FLAG: FlagDoc = {
  name: "json",
  type: "boolean",
  help: "Print one JSON envelope on stdout (see the README), success or failure.",
};
export const HELP_FLAG: FlagDoc = { name: "help", type: "boolean", short: "h", help: "Print this help." };

export interface RegistryCommandSpec {
  readonly name: string;
  /** The usage line after `acr-allowlist-sync `. */
  readonly synopsis: string;
  /** A paragraph under the usage line. */
  readonly description: string;
  /** Every flag the command takes, documented (common flags included). */
  readonly flags: readonly FlagDoc[];
  readonly exitCodes?: string;
}

const EXIT_CODES = "Exit codes: 0 every registry ok, 1 a registry failed or was refused, 2 bad usage or configuration.";

export function registryCommandHelp(spec: RegistryCommandSpec): string {
  return `Usage: acr-allowlist-sync ${spec.synopsis}

${spec.description}

${helpLines(spec.flags)}

Credentials come from DefaultAzureCredential (az login, managed identity, environment).
${spec.exitCodes ?? EXIT_CODES}
`;
}

export interface ParsedRegistryCommand {
  readonly values: FlagValues;
  /** The environment with the flags applied: what `loadSettings` reads. */
  readonly env: Record<string, string | undefined>;
  readonly ledger: LedgerChoice;
  /** Warnings to print on stderr before the run (legacy state file, ...). */
  readonly warnings: readonly string[];
}

export function parseRegistryCommand(
  spec: RegistryCommandSpec,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedRegistryCommand {
  const values = parseFlags(args, flagSpecOf(spec.flags), spec.name);
  const merged: Record<string, string | undefined> = { ...env };
  for (const flag of spec.flags) {
    if (flag.setting === undefined) continue;
    const value = values[flag.name];
    if (value === undefined) continue;
    if (typeof value === "string" && NUMBER_SETTINGS.has(flag.setting) && value.trim().startsWith("-")) {
      throw new UsageError(`--${flag.name} must not be negative, not '${value}'.`, {
        details: { flag: `--${flag.name}`, setting: flag.setting },
        remedy: `Give --${flag.name} a number of 0 or more (the setting ${flag.setting}).`,
      });
    }
    merged[flag.setting] = typeof value === "boolean" ? String(value) : value;
  }
  const warnings: string[] = [];
  return { values, env: merged, ledger: ledgerChoice(values.state, env, warnings), warnings };
}

/** The legacy default, relative to the current directory: still read (with a warning) when it exists. */
export const LEGACY_STATE = join(".acr-allowlist-sync", "ledger.json");

/** `$XDG_STATE_HOME/acr-allowlist-sync/ledger.json`, else `~/.local/state/acr-allowlist-sync/ledger.json`. */
export function defaultStatePath(env: Readonly<Record<string, string | undefined>>): string {
  const xdg = env.XDG_STATE_HOME;
  // The XDG spec: a relative value is invalid and must be ignored.
  const base =
    xdg !== undefined && xdg !== "" && isAbsolute(xdg) ? xdg : join(env.HOME ?? homedir(), ".local", "state");
  return join(base, "acr-allowlist-sync", "ledger.json");
}

function ledgerChoice(
  state: string | boolean | undefined,
  env: Readonly<Record<string, string | undefined>>,
  warnings: string[],
): LedgerChoice {
  if (typeof state === "string") {
    if (state.trim() === "") {
      throw new ConfigError("Setting --state is invalid: it is empty.", {
        details: { setting: "--state" },
        remedy: "Give a ledger file path, or 'blob' for the function app's ledger; omit --state for the default.",
      });
    }
    return state === "blob" ? { kind: "blob" } : { kind: "file", path: state };
  }
  const path = defaultStatePath(env);
  // The old default holds what this directory's runs own: ignoring it would re-adopt (or orphan) rules.
  if (existsSync(LEGACY_STATE)) {
    warnings.push(
      existsSync(path)
        ? `reading the ledger from the old default ./${LEGACY_STATE}, not ${path} (both exist); merge them or pass --state.`
        : `reading the ledger from the old default ./${LEGACY_STATE}; move it (with its .audit.jsonl) to ${path}, or pass --state ${LEGACY_STATE}.`,
    );
    return { kind: "file", path: LEGACY_STATE };
  }
  return { kind: "file", path };
}

/** Who runs it, recorded in the audit trail. */
export function cliActor(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): keep "unknown".
  }
  return `cli:${user}@${hostname()}`;
}

export function writeWarnings(stderr: TextSink, warnings: readonly string[]): void {
  for (const warning of warnings) stderr.write(`acr-allowlist-sync: warning: ${warning}\n`);
}

export interface StartedCommand {
  readonly parsed: ParsedRegistryCommand;
  readonly runtime: Runtime;
  readonly json: boolean;
}

/**
 * The common start of a registry command: parse the flags, print the help when asked (undefined
 * is returned then), print the start-up warnings, validate every setting and wire the ports.
 */
export function startRegistryCommand(
  spec: RegistryCommandSpec,
  args: readonly string[],
  io: CliIO,
): StartedCommand | undefined {
  const parsed = parseRegistryCommand(spec, args, io.env ?? process.env);
  if (parsed.values.help === true) {
    io.stdout.write(registryCommandHelp(spec));
    return undefined;
  }
  writeWarnings(io.stderr, parsed.warnings);
  return { parsed, runtime: createRuntime(parsed.env, { ledger: parsed.ledger }), json: parsed.values.json === true };
}

/** Commands that change one registry's state say which one: `--registry` is required. */
export function requireRegistryFlag(parsed: ParsedRegistryCommand, command: string): void {
  if (typeof parsed.values.registry !== "string") {
    throw new UsageError(`${command} needs --registry <resource ID>.`, {
      details: { command },
      remedy: `Run 'acr-allowlist-sync ${command} --help' for the flags it takes.`,
    });
  }
}
