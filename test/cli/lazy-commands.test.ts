import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { canaryCommand } from "../../src/cli/canary.js";
import { historyCommand } from "../../src/cli/history.js";
import { applyCommand, planCommand } from "../../src/cli/plan-apply.js";
import { rollbackCommand } from "../../src/cli/rollback.js";

/** The dispatcher lists the sync commands without importing them: their help line must stay their own. */
describe("lazily loaded commands", () => {
  it("are listed in the top-level help with the summary of the command they load", async () => {
    let stdout = "";
    const code = await runCli(["--help"], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: () => true },
    });
    expect(code).toBe(0);
    for (const command of [planCommand, applyCommand, historyCommand, rollbackCommand, canaryCommand]) {
      expect(stdout).toMatch(new RegExp(`^  ${command.name}\\s+${command.summary.replace(/[.()]/g, "\\$&")}$`, "m"));
      expect(command.envelope).toBe(true);
    }
  });

  it("run the command they load, with its flags and exit code", async () => {
    let stdout = "";
    const code = await runCli(["history", "--help"], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: () => true },
    });
    expect(code).toBe(0);
    expect(stdout).toBe(historyCommand.usage);
  });
});
