import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "../errors.js";

/** The option table of a subcommand, in `node:util` `parseArgs` form. */
export type FlagSpec = NonNullable<ParseArgsConfig["options"]>;

export type FlagValues = Record<string, string | boolean | undefined>;

/**
 * Strict `parseArgs` (unknown flags and positionals are errors) whose failures become one-line
 * `UsageError`s; Node's own messages are long and suggest `--` tricks that do not apply here.
 */
export function parseFlags(args: readonly string[], spec: FlagSpec, command: string): FlagValues {
  refuseNegativeNumbers(args, spec, command);
  try {
    const { values } = parseArgs({ args: [...args], options: spec, strict: true, allowPositionals: false });
    return values as FlagValues;
  } catch (error) {
    const raw = error instanceof Error ? error.message : String(error);
    const code = (error as { code?: unknown }).code;
    const firstSentence = raw.split(/\.\s/)[0]?.replace(/\.$/, "") ?? raw;
    const message =
      code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL"
        ? `Unexpected argument ${/'[^']*'/.exec(raw)?.[0] ?? ""}`.trimEnd()
        : firstSentence;
    throw new UsageError(`${command}: ${message}.`, {
      details: { command },
      remedy: `Run 'acr-allowlist-sync ${command} --help' for the flags it takes.`,
    });
  }
}

/**
 * `--headroom -5`: Node calls this an ambiguous option and suggests `--headroom=-5`; say what is
 * wrong instead, naming the flag. (`--headroom=-5` reaches the flag's own validation.)
 */
function refuseNegativeNumbers(args: readonly string[], spec: FlagSpec, command: string): void {
  for (let index = 0; index + 1 < args.length; index += 1) {
    const name = /^--([^=]+)$/.exec(args[index] ?? "")?.[1];
    const next = args[index + 1] ?? "";
    if (name === undefined || spec[name]?.type !== "string" || !/^-\d/.test(next)) continue;
    throw new UsageError(`${command}: --${name} must not be negative, not '${next}'.`, {
      details: { command, flag: `--${name}` },
      remedy: `Give --${name} a value of 0 or more; run 'acr-allowlist-sync ${command} --help' for its range.`,
    });
  }
}

export function stringFlag(values: FlagValues, name: string): string | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.trim() === "") throw new UsageError(`--${name} needs a value.`);
  return value;
}

/** A comma-separated list: `eastus,westeurope`; empty items are an error, duplicates are kept. */
export function listFlag(values: FlagValues, name: string): string[] | undefined {
  const value = stringFlag(values, name);
  if (value === undefined) return undefined;
  const items = value.split(",").map((item) => item.trim());
  if (items.some((item) => item === "")) {
    throw new UsageError(`--${name} has an empty item in '${value}'.`, {
      remedy: `Separate the items of --${name} with single commas.`,
    });
  }
  return items;
}

export interface IntegerRange {
  readonly min: number;
  readonly max: number;
}

/** A decimal integer within `range`; `1e3`, `0x10`, `12abc` and `1.5` are refused. */
export function integerFlag(values: FlagValues, name: string, range: IntegerRange): number | undefined {
  const value = stringFlag(values, name);
  if (value === undefined) return undefined;
  const text = value.trim();
  const parsed = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < range.min || parsed > range.max) {
    throw new UsageError(`--${name} must be an integer from ${range.min} to ${range.max}, not '${value}'.`);
  }
  return parsed;
}

/** A non-negative decimal number (`0.25`, `1000`). */
export function nonNegativeNumberFlag(values: FlagValues, name: string): number | undefined {
  const value = stringFlag(values, name);
  if (value === undefined) return undefined;
  const text = value.trim();
  const parsed = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(parsed)) throw new UsageError(`--${name} must be a non-negative number, not '${value}'.`);
  return parsed;
}

export function requireFlag<T>(value: T | undefined, name: string, command: string): T {
  if (value === undefined) {
    throw new UsageError(`${command}: --${name} is required.`, {
      remedy: `Run 'acr-allowlist-sync ${command} --help' for the flags it takes.`,
    });
  }
  return value;
}
