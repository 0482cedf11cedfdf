import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelopeSchema } from "../../src/cli/envelope.js";
import { runBuiltCli, type CliRun } from "../support/cli-process.js";
import { startHarness, type Harness } from "../support/harness.js";
import { fixturePath } from "../support/paths.js";
import { readServiceTagsFixture } from "../support/servicetags-server.js";
import { tlsPaths } from "../support/tls.js";

/**
 * `acr-allowlist-sync canary` from outside: the built CLI as a separate process against the ARM
 * emulator's Tasks. Exit 0 when the agent got in, 1 when it was refused, 2 for bad usage; the
 * diagnosis in the text and in the JSON envelope.
 */

const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];
let harness: Harness;
let scratch: string;

beforeAll(async () => {
  // The Run comes back with scheduleRun's 200 answer, so the CLI's own poll interval is all it waits.
  harness = await startHarness({
    exportIdentityEnv: false,
    arm: { tasks: { queuedMs: 5, runningMs: 10, scheduleRunResponse: "sync" } },
  });
  const file = JSON.parse(readServiceTagsFixture("ServiceTags_Public_20251020.acr.json").toString("utf8")) as {
    values: { name: string; properties: { addressPrefixes: string[] } }[];
  };
  const japanEast = file.values.find((value) => value.name === "AzureContainerRegistry.JapanEast");
  harness.arm.tasks.setAgentPool(
    "japaneast",
    (japanEast?.properties.addressPrefixes ?? []).filter((prefix) => !prefix.includes(":")),
  );
  scratch = mkdtempSync(join(tmpdir(), "cli-canary-"));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> {
  return runBuiltCli(args, {
    ...harness.settings({ SERVICE_TAGS_URL: SERVICE_TAGS, CANARY_POLL_INTERVAL_MS: "20" }),
    NODE_EXTRA_CA_CERTS: tlsPaths.ca,
    HOME: scratch,
    ...extraEnv,
  });
}

function registry(): { id: string; name: string } {
  const name = `cli${randomBytes(4).toString("hex")}`;
  return { id: harness.addRegistry({ name, ipRules: PEOPLE, networkRuleBypassAllowedForTasks: false }), name };
}

describe("acr-allowlist-sync canary", () => {
  it("exits 1 with the diagnosis in the JSON envelope when the agent is refused", async () => {
    const { id, name } = registry();
    const state = join(scratch, `${name}.json`);
    const run = await cli(["canary", "--registry", id, "--state", state, "--json"]);
    expect(run.code).toBe(1);
    const value = envelopeSchema.parse(JSON.parse(run.stdout));
    expect(value).toMatchObject({ schemaVersion: 1, command: "canary", error: null });
    const [result] = value.results;
    const canary = result?.canary as Record<string, unknown>;
    const at = String(canary.at);
    expect(result).toMatchObject({
      registry: id,
      ok: false,
      outcome: "refused",
      plan: null,
      error: {
        code: "CanaryRefused",
        message: `The firewall of ${name} refused the ACR Tasks agent: run ca1 at ${at} came from 4.216.205.65.`,
        remedy: `4.216.205.65 is in AzureContainerRegistry.JapanEast, which ${name} allows, but none of its IP rules covers it: run a sync (acr-allowlist-sync apply --registry ${name}) and read its plan.`,
      },
    });
    expect(canary).toMatchObject({
      verdict: "refused",
      refusedIp: "4.216.205.65",
      containingTags: ["AzureContainerRegistry.JapanEast", "AzureContainerRegistry"],
      runId: "ca1",
      trigger: "cli",
      serviceTagsFile: "ServiceTags_Public_20251020.acr.json",
    });
    expect(run.stderr).toBe(
      `acr-allowlist-sync: ${name}: The firewall of ${name} refused the ACR Tasks agent: run ca1 at ${at} came from 4.216.205.65. 4.216.205.65 is in AzureContainerRegistry.JapanEast, which ${name} allows, but none of its IP rules covers it: run a sync (acr-allowlist-sync apply --registry ${name}) and read its plan.\n`,
    );
  });

  it("exits 0 and prints the diagnosis as text once a sync has allowed the region", async () => {
    const { id, name } = registry();
    const state = join(scratch, `${name}.json`);
    expect((await cli(["apply", "--registry", id, "--state", state])).code).toBe(0);
    const run = await cli(["canary", "--registry", id, "--state", state]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(
        `^Canary ${name} \\(japaneast\\), run ca1 at \\S+: admitted\\.\\nThe ACR Tasks agent got into ${name} \\(run ca1 Succeeded\\)\\.\\nAdvice: Nothing to do\\.\\n$`,
      ),
    );
  });

  it("exits 2 when no registry is given and no canary registry is configured", async () => {
    const { id } = registry();
    const run = await cli(["canary", "--state", join(scratch, "none.json")], { TARGET_REGISTRIES: id });
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      "acr-allowlist-sync: No registry to run the canary on. Give --registry <resource ID>, or configure CANARY_REGISTRIES or CANARY_ON_TARGETS.\n",
    );
  });
});
