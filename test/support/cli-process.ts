import { execFile } from "node:child_process";
import { join } from "node:path";
import { projectRoot } from "./paths.js";

/** The built CLI entry (dist/ is built by the global setup). */
export const BUILT_CLI = join(projectRoot(), "dist", "src", "cli", "main.js");

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRunOptions {
  /** Written to the child's stdin, then closed. */
  readonly input?: string;
  /** Working directory of the child (default: this process's). */
  readonly cwd?: string;
}

/**
 * Runs the built CLI as a separate process with exactly `env` (plus PATH), as an operator or a
 * script would. Never throws for a non-zero exit: the code is part of the contract under test.
 */
export function runBuiltCli(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  options: CliRunOptions = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BUILT_CLI, ...args],
      {
        env: { PATH: process.env.PATH ?? "", ...env },
        maxBuffer: 64 * 1024 * 1024,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}
