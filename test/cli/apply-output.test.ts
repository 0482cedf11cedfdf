import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coloursFor } from "../../src/cli/output.js";
import { BUILT_CLI, runBuiltCli, type CliRun } from "../support/cli-process.js";
import { startHarness, type Harness } from "../support/harness.js";
import { fixturePath } from "../support/paths.js";
import { tlsPaths } from "../support/tls.js";

/**
 * Contract point 6, "see it before it happens", on the built CLI as a separate process: the plan
 * before the write, progress on stderr while ARM works (and --quiet), refused plans with their
 * guard, unchanged rules as a count, no colour unless a terminal asks for it, one message prefix,
 * and Ctrl-C during an apply.
 */

const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];
const ESCAPE = new RegExp(String.fromCharCode(27) + "\\[");

let harness: Harness;
/** ARM that takes minutes to finish an update: an apply is still waiting when Ctrl-C comes. */
let slow: Harness;
let scratch: string;

beforeAll(async () => {
  harness = await startHarness({ exportIdentityEnv: false });
  slow = await startHarness({ exportIdentityEnv: false, arm: { pollsBeforeDone: 10_000, retryAfterSeconds: 1 } });
  scratch = mkdtempSync(join(tmpdir(), "cli-output-"));
});
afterAll(async () => {
  await Promise.all([harness.close(), slow.close()]);
  rmSync(scratch, { recursive: true, force: true });
});

function env(on: Harness, extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    ...on.settings({ SERVICE_TAGS_URL: SERVICE_TAGS }),
    NODE_EXTRA_CA_CERTS: tlsPaths.ca,
    HOME: scratch,
    ...extra,
  };
}

function cli(args: string[], extra: Record<string, string> = {}): Promise<CliRun> {
  return runBuiltCli(args, env(harness, extra));
}

function target(on: Harness = harness, spec: { sku?: "Basic" } = {}): { id: string; state: string } {
  const id = on.addRegistry({ name: `out${randomBytes(4).toString("hex")}`, ipRules: PEOPLE, ...spec });
  return { id, state: join(scratch, `${randomBytes(4).toString("hex")}.json`) };
}

describe("apply output", () => {
  it("prints the plan before writing, then progress with the elapsed time on stderr", async () => {
    const { id, state } = target();
    const outcome = await cli(["apply", "--registry", id, "--state", state]);
    expect(outcome.code).toBe(0);
    const planAt = outcome.stdout.indexOf("Changes: 11 to add, 0 to remove.");
    const writingAt = outcome.stdout.indexOf("Writing ");
    const appliedAt = outcome.stdout.search(/Applied; audit entry/);
    expect(planAt).toBeGreaterThan(-1);
    expect(planAt).toBeLessThan(writingAt);
    expect(writingAt).toBeLessThan(appliedAt);
    // The plan is printed once, before the write, not again in the summary.
    expect(outcome.stdout.split("Changes: 11 to add").length).toBe(2);
    expect(outcome.stderr).toMatch(
      /^acr-allowlist-sync: waiting for ARM to apply the update to out[0-9a-f]+: \d+s elapsed$/m,
    );
    expect(outcome.stderr).toMatch(/^acr-allowlist-sync: ARM applied the update to out[0-9a-f]+ in [\d.]+ m?s\.$/m);
    for (const line of outcome.stderr.trimEnd().split("\n")) expect(line).toMatch(/^acr-allowlist-sync: /);
  });

  it("writes nothing on stderr with --quiet", async () => {
    const { id, state } = target();
    const outcome = await cli(["apply", "--registry", id, "--state", state, "--quiet"]);
    expect(outcome.code).toBe(0);
    expect(outcome.stderr).toBe("");
    expect(outcome.stdout).toContain("Applied; audit entry");
  });

  it("prints a refused plan with its guard, and the reason as one line on stderr", async () => {
    const { id, state } = target(harness, { sku: "Basic" });
    const outcome = await cli(["apply", "--registry", id, "--state", state]);
    expect(outcome.code).toBe(1);
    expect(outcome.stdout).toContain("Changes: 11 to add, 0 to remove.");
    expect(outcome.stdout).toContain("guard sku: Registry");
    expect(outcome.stdout).toContain("Refused by a guard: nothing was written.");
    expect(outcome.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(outcome.stderr).toMatch(
      /^acr-allowlist-sync: out[0-9a-f]+: Nothing written to out[0-9a-f]+: Registry .* is Basic/,
    );
  });

  it("collapses unchanged rules to a count unless --show-unchanged", async () => {
    const { id, state } = target();
    await cli(["apply", "--registry", id, "--state", state, "--quiet"]);
    const collapsed = await cli(["plan", "--registry", id, "--state", state]);
    expect(collapsed.stdout).toContain("= 13 unchanged rules (--show-unchanged lists them)");
    expect(collapsed.stdout).not.toMatch(/^\s+= 203\.0\.113\.10/m);
    const listed = await cli(["plan", "--registry", id, "--state", state, "--show-unchanged"]);
    expect(listed.stdout).toMatch(/^\s+= 203\.0\.113\.10\/32\s+people/m);
    expect(listed.stdout).not.toContain("unchanged rules (--show-unchanged");
  });

  it("uses no colour when redirected, also with FORCE_COLOR-like terminals, and writes thousands separators", async () => {
    const { id, state } = target();
    const outcome = await cli(["plan", "--registry", id, "--state", state], { TERM: "xterm-256color" });
    expect(outcome.stdout).not.toMatch(ESCAPE);
    expect(outcome.stderr).not.toMatch(ESCAPE);
    const spread = join(scratch, "spread.txt");
    writeFileSync(spread, "10.0.0.1\n10.0.255.1\n10.1.0.1\n");
    const summary = await cli(["aggregate", "--prefixes-file", spread, "--max-rules", "2"]);
    expect(summary.stdout).toContain("65,534 extra addresses");
    expect(summary.stdout).toContain("Read 3 IPv4 prefixes");
  });
});

describe("colour decisions", () => {
  const terminal = { isTTY: true, write: () => true };
  const file = { write: () => true };
  it("colours a terminal, and nothing with NO_COLOR, TERM=dumb or a redirected stream", () => {
    expect(coloursFor(terminal, {}).red("x")).toMatch(ESCAPE);
    expect(coloursFor(terminal, { NO_COLOR: "1" }).red("x")).toBe("x");
    expect(coloursFor(terminal, { TERM: "dumb" }).red("x")).toBe("x");
    expect(coloursFor(file, {}).red("x")).toBe("x");
  });
});

describe("Ctrl-C during an apply", () => {
  it("says the update may still complete, releases the lock and exits 130", async () => {
    const { id, state } = target(slow);
    const child = spawn(process.execPath, [BUILT_CLI, "apply", "--registry", id, "--state", state], {
      env: { PATH: process.env.PATH ?? "", ...env(slow) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => {
        resolve(code);
      }),
    );
    await new Promise<void>((resolve) => {
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString("utf8");
        if (stderr.includes("waiting for ARM")) resolve();
      });
    });
    expect(existsSync(`${state}.lock`)).toBe(true);
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stdout).toContain("Writing ");
    expect(stderr).toMatch(
      /^acr-allowlist-sync: interrupted while ARM was applying the update to out[0-9a-f]+: the update was sent and may still complete\./m,
    );
    expect(stderr).toMatch(/^acr-allowlist-sync: the lock is released\.$/m);
    expect(existsSync(`${state}.lock`)).toBe(false);
  });

  it("with --concurrency 2 names every registry whose update is in flight, says each may still complete, and releases the locks", async () => {
    const first = target(slow);
    const second = target(slow);
    const names = [first.id, second.id].map((id) => id.split("/").pop() ?? id);
    const child = spawn(process.execPath, [BUILT_CLI, "apply", "--concurrency", "2", "--state", first.state], {
      env: { PATH: process.env.PATH ?? "", ...env(slow, { TARGET_REGISTRIES: `${first.id},${second.id}` }) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => {
        resolve(code);
      }),
    );
    // Both PATCHes are sent: the progress line lists both registries.
    const both = new RegExp(
      `^acr-allowlist-sync: waiting for ARM to apply 2 updates: out[0-9a-f]+ \\(\\d+s elapsed\\), out[0-9a-f]+ \\(\\d+s elapsed\\)$`,
      "m",
    );
    await new Promise<void>((resolve) => {
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString("utf8");
        if (both.test(stderr)) resolve();
      });
    });
    const progressLine = both.exec(stderr)?.[0] ?? "";
    for (const name of names) expect(progressLine).toContain(name);
    expect(existsSync(`${first.state}.lock`)).toBe(true);
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    for (const name of names)
      expect(stderr).toMatch(
        new RegExp(
          `^acr-allowlist-sync: interrupted while ARM was applying the update to ${name}: the update was sent and may still complete\\.`,
          "m",
        ),
      );
    expect(stderr).toMatch(/^acr-allowlist-sync: the 2 locks are released\.$/m);
    expect(existsSync(`${first.state}.lock`)).toBe(false);
  });
});
