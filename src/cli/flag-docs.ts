import type { FlagSpec } from "./flags.js";

/** One flag of a command, with its line of help: the spec that parses it and the help are made from this. */
export interface FlagDoc {
  /** Without the leading `--`. */
  readonly name: string;
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** Placeholder shown in the help (`<value>`); string flags only. */
  readonly value?: string;
  readonly help: string;
  /** The app setting the flag sets, when it is one. */
  readonly setting?: string;
}

export function flagSpecOf(flags: readonly FlagDoc[]): FlagSpec {
  const spec: FlagSpec = {};
  for (const flag of flags)
    spec[flag.name] = flag.short === undefined ? { type: flag.type } : { type: flag.type, short: flag.short };
  return spec;
}

const COLUMN = 34;

/** One line per flag (long help wraps under its own column). */
export function helpLines(flags: readonly FlagDoc[]): string {
  return flags
    .map((flag) => {
      const left = `  ${flag.short === undefined ? "" : `-${flag.short}, `}--${flag.name}${flag.type === "string" ? ` <${flag.value ?? "value"}>` : ""}`;
      return left.length + 2 > COLUMN
        ? `${left}\n${" ".repeat(COLUMN)}${flag.help}`
        : `${left.padEnd(COLUMN)}${flag.help}`;
    })
    .join("\n");
}
