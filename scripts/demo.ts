import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { coloursFor } from "../src/cli/output.js";
import { fixturePath, projectRoot } from "../test/support/paths.js";
import { startHarness, type Harness } from "../test/support/harness.js";
import { tlsPaths } from "../test/support/tls.js";

/**
 * The offline demo: a firewalled Premium registry with two people's rules in the local ARM
 * emulator (HTTPS, tokens from a local managed identity endpoint), a real Microsoft service-tags
 * file from the repository, and the real CLI run as a separate process: plan, apply, apply again.
 * Nothing leaves the machine; everything started here is stopped before it exits.
 */

const PEOPLE_RULES = ["203.0.113.10", "198.51.100.0/24"];
const SERVICE_TAGS_FILE = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");

// Bold only for a person at a terminal: never with NO_COLOR or when redirected (the CLI decides the same way).
const colours = coloursFor(process.stdout, process.env);

function banner(text: string): void {
  process.stdout.write(`\n${colours.bold(`== ${text}`)}\n`);
}

function cli(harness: Harness, args: string[], statePath: string): Promise<number> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...(process.env.NO_COLOR === undefined ? {} : { NO_COLOR: process.env.NO_COLOR }),
    ...(process.env.TERM === undefined ? {} : { TERM: process.env.TERM }),
    ...harness.settings({ SERVICE_TAGS_URL: SERVICE_TAGS_FILE, SERVICE_TAGS_RETRIES: "0" }),
    // The emulators' certificate is made for this demo and the tests; Node reads this at start-up.
    NODE_EXTRA_CA_CERTS: tlsPaths.ca,
  };
  process.stdout.write(`$ acr-allowlist-sync ${args.join(" ")}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(projectRoot(), "dist", "src", "cli", "main.js"), ...args, "--state", statePath],
      { env, stdio: ["ignore", "inherit", "inherit"] },
    );
    child.on("error", reject);
    child.on("exit", (code) => {
      resolve(code ?? 1);
    });
  });
}

function check(condition: boolean, message: string): void {
  process.stdout.write(`${condition ? "ok  " : "FAIL"} ${message}\n`);
  if (!condition) process.exitCode = 1;
}

async function main(): Promise<void> {
  const harness = await startHarness({ exportIdentityEnv: false });
  const stateDir = mkdtempSync(join(tmpdir(), "acr-allowlist-sync-demo-"));
  const statePath = join(stateDir, "ledger.json");
  try {
    const id = harness.addRegistry({
      name: "contosobuilds",
      location: "japaneast",
      ipRules: PEOPLE_RULES,
      networkRuleBypassAllowedForTasks: false,
    });
    banner("A firewalled Premium registry in the local ARM emulator");
    process.stdout.write(`${id}\ndefaultAction Deny; rules added by people: ${PEOPLE_RULES.join(", ")}\n`);
    process.stdout.write(`service tags: ${SERVICE_TAGS_FILE} (Microsoft's file of 2025-10-20, ACR tags)\n`);

    banner("1. Dry run: what would change (nothing is written)");
    check((await cli(harness, ["plan", "--registry", id], statePath)) === 0, "plan exited 0");
    check(harness.arm.writes === 0, "no write to the registry during the dry run");

    banner("2. Apply: one PATCH of the full list, then read back and record");
    check((await cli(harness, ["apply", "--registry", id], statePath)) === 0, "apply exited 0");
    const afterApply = harness.arm.registry(id);
    check(harness.arm.writes === 1, `one write (PATCH) made: ${harness.arm.writes}`);
    check(
      PEOPLE_RULES.every((rule, i) => afterApply.ipRules[i] === rule),
      "people's rules are still there, exactly as they were",
    );
    check(afterApply.defaultAction === "Deny", "defaultAction still Deny");
    process.stdout.write(`registry now holds ${afterApply.ipRules.length} rules\n`);

    banner("3. Apply again: the registry already matches, so nothing is written");
    check((await cli(harness, ["apply", "--registry", id], statePath)) === 0, "second apply exited 0");
    check(harness.arm.writes === 1, `still exactly one write in total: ${harness.arm.writes}`);
    check(
      JSON.stringify(harness.arm.registry(id).ipRules) === JSON.stringify(afterApply.ipRules),
      "rules unchanged by the second run",
    );

    banner("4. The audit trail");
    check((await cli(harness, ["history", "--registry", id], statePath)) === 0, "history exited 0");
  } finally {
    await harness.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
  banner(process.exitCode === 1 ? "Demo FAILED" : "Demo finished: everything it started is stopped");
}

await main();
