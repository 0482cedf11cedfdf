import { isAllowlistSyncError } from "../errors.js";

/** Where a command writes. `process.stdout`/`process.stderr` fit, and so does a test buffer. */
export interface TextSink {
  write(text: string): unknown;
}

export interface CliIO {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  /** Environment the settings are read from; `process.env` when absent. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The process entry point: commands that write may handle Ctrl-C (never in-process tests). */
  readonly handleSignals?: boolean;
}

/** One subcommand of `acr-allowlist-sync`: parses its own flags and returns the exit code. */
export interface Subcommand {
  readonly name: string;
  /** One line for the top-level help. */
  readonly summary: string;
  /** The full help text of the subcommand (printed for `--help`). */
  readonly usage: string;
  /** Prints the JSON envelope with --json: usage errors then print it too, with `results: []`. */
  readonly envelope?: boolean;
  run(args: readonly string[], io: CliIO): Promise<number>;
}

/**
 * A subcommand whose module is imported only when it runs, so that starting the CLI for another
 * command does not pay for loading it. Its name and summary are given here for the top-level help
 * (a test checks they are the loaded command's own); registry commands print the envelope.
 */
export function lazyCommand(
  listed: { readonly name: string; readonly summary: string; readonly envelope?: boolean },
  load: () => Promise<Subcommand>,
): Subcommand {
  return {
    envelope: true,
    ...listed,
    usage: `Run 'acr-allowlist-sync ${listed.name} --help'.`,
    run: async (args, io) => (await load()).run(args, io),
  };
}

export const EXIT_OK = 0;
/** The run failed: infeasible budget, guard tripped, registry refused, source unavailable, ... */
export const EXIT_FAILURE = 1;
/** The caller must change something: bad flags, bad configuration, bad input data. */
export const EXIT_USAGE = 2;

/** Usage, configuration and input errors exit 2; every other failure exits 1. */
export function exitCodeFor(error: unknown): number {
  if (isAllowlistSyncError(error)) {
    return error.category === "usage" || error.category === "config" || error.category === "input"
      ? EXIT_USAGE
      : EXIT_FAILURE;
  }
  return EXIT_FAILURE;
}
