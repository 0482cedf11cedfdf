import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILT_CLI } from "../support/cli-process.js";
import { startHarness, type Harness } from "../support/harness.js";
import { fixturePath, projectRoot } from "../support/paths.js";
import { tlsPaths } from "../support/tls.js";

/**
 * Contract point 6, colour only on a terminal, end to end: the built CLI and the demo run in a
 * pseudo-terminal made by util-linux `script`, as a person at a terminal would run them. Colour
 * escapes on the terminal; none with NO_COLOR=1; none in output redirected to a file.
 */

const SCRIPT = "/usr/bin/script";
const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const DEMO = join(projectRoot(), "dist", "scripts", "demo.js");
const ESCAPE = new RegExp(String.fromCharCode(27) + "\\[\\d+m");

let harness: Harness;
let scratch: string;

beforeAll(async () => {
  harness = await startHarness({ exportIdentityEnv: false });
  scratch = mkdtempSync(join(tmpdir(), "cli-tty-"));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** A word for `sh -c`, whatever it holds. */
function quote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Runs `command` (argv words, then an optional shell redirection) in a pseudo-terminal; the terminal's output. */
function inTerminal(words: readonly string[], env: Record<string, string | undefined>, redirect = ""): Promise<string> {
  const command = words.map(quote).join(" ") + redirect;
  return new Promise((resolve, reject) => {
    execFile(
      SCRIPT,
      ["-qec", command, "/dev/null"],
      { env: { PATH: process.env.PATH ?? "", SHELL: "/bin/sh", TERM: "xterm-256color", ...env }, maxBuffer: 16 << 20 },
      (error, stdout) => {
        if (error !== null) reject(new Error(`${command} in a terminal failed: ${error.message}\n${stdout}`));
        else resolve(stdout);
      },
    );
  });
}

function cliEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    ...harness.settings({ SERVICE_TAGS_URL: SERVICE_TAGS }),
    NODE_EXTRA_CA_CERTS: tlsPaths.ca,
    HOME: scratch,
    ...extra,
  };
}

function plan(): string[] {
  const id = harness.addRegistry({ name: `tty${randomBytes(4).toString("hex")}`, ipRules: ["203.0.113.10"] });
  return [process.execPath, BUILT_CLI, "plan", "--registry", id, "--state", join(scratch, "ledger.json")];
}

describe("colour on a real terminal", () => {
  it("has util-linux script for the pseudo-terminal", () => {
    expect(existsSync(SCRIPT), `${SCRIPT} (util-linux) is needed to run the CLI in a pseudo-terminal`).toBe(true);
  });

  it("colours the plan on a terminal", async () => {
    const output = await inTerminal(plan(), cliEnv());
    expect(output).toContain("Changes: 11 to add, 0 to remove.");
    expect(output).toMatch(ESCAPE);
  });

  it("uses no colour on a terminal with NO_COLOR=1", async () => {
    const output = await inTerminal(plan(), cliEnv({ NO_COLOR: "1" }));
    expect(output).toContain("Changes: 11 to add, 0 to remove.");
    expect(output).not.toMatch(ESCAPE);
  });

  it("uses no colour in output redirected to a file, even when started from a terminal", async () => {
    const file = join(scratch, `plan-${randomBytes(4).toString("hex")}.txt`);
    await inTerminal(plan(), cliEnv(), ` > ${quote(file)}`);
    const text = readFileSync(file, "utf8");
    expect(text).toContain("Changes: 11 to add, 0 to remove.");
    expect(text).not.toMatch(ESCAPE);
  });

  // The demo starts its own emulators and runs the CLI four times: one run per test.
  const demo = [process.execPath, DEMO];
  const home = { HOME: scratch };

  it("colours the demo on a terminal", async () => {
    const coloured = await inTerminal(demo, home);
    expect(coloured).toContain("Demo finished");
    expect(coloured).toMatch(ESCAPE);
  });

  it("uses no colour in the demo on a terminal with NO_COLOR=1", async () => {
    const plain = await inTerminal(demo, { ...home, NO_COLOR: "1" });
    expect(plain).toContain("Demo finished");
    expect(plain).not.toMatch(ESCAPE);
  });

  it("uses no colour in the demo's output redirected to a file", async () => {
    const file = join(scratch, "demo.txt");
    await inTerminal(demo, home, ` > ${quote(file)}`);
    const redirected = readFileSync(file, "utf8");
    expect(redirected).toContain("Demo finished");
    expect(redirected).not.toMatch(ESCAPE);
  });
});
