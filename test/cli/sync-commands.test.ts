import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBuiltCli, type CliRun } from "../support/cli-process.js";
import { fixturePath } from "../support/paths.js";
import { startHarness, type Harness } from "../support/harness.js";
import { tlsPaths } from "../support/tls.js";

/**
 * The built CLI as an operator runs it: a separate process that finds ARM through ARM_ENDPOINT,
 * trusts the emulator through NODE_EXTRA_CA_CERTS and gets its token through IDENTITY_ENDPOINT /
 * IDENTITY_HEADER, as @azure/identity does by itself. dist/ is built by the global setup.
 */

const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];

let harness: Harness;
let scratch: string;

beforeAll(async () => {
  harness = await startHarness({ exportIdentityEnv: false });
  scratch = mkdtempSync(join(tmpdir(), "cli-sync-"));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> {
  return runBuiltCli(args, {
    ...harness.settings({ SERVICE_TAGS_URL: SERVICE_TAGS }),
    NODE_EXTRA_CA_CERTS: tlsPaths.ca,
    HOME: scratch,
    ...extraEnv,
  });
}

function registry(): { id: string; state: string } {
  const id = harness.addRegistry({ name: `cli${randomBytes(4).toString("hex")}`, ipRules: PEOPLE });
  return { id, state: join(scratch, `${randomBytes(4).toString("hex")}.json`) };
}

describe("acr-allowlist-sync plan and apply, as a separate process", () => {
  it("plans as JSON without writing, applies, and then has nothing to do", async () => {
    const { id, state } = registry();
    const plan = await cli(["plan", "--registry", id, "--state", state, "--json"]);
    expect(plan.stderr).toBe("");
    expect(plan.code).toBe(0);
    const planned = (JSON.parse(plan.stdout) as { results: { plan: { adds: unknown[]; changed: boolean } }[] })
      .results[0]?.plan;
    if (planned === undefined) throw new Error("no plan in the envelope");
    expect(planned.changed).toBe(true);
    expect(planned.adds).toHaveLength(11);
    expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);

    const apply = await cli(["apply", "--registry", id, "--state", state]);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain("Changes: 11 to add, 0 to remove.");
    expect(apply.stdout).toMatch(/Applied; audit entry \d{8}T\d{9}Z-[0-9a-f]{6}\./);
    expect(harness.arm.registry(id).ipRules).toHaveLength(13);

    const again = await cli(["apply", "--registry", id, "--state", state, "--json"]);
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as { results: { outcome: string }[] }).results[0]?.outcome).toBe("unchanged");

    const history = await cli(["history", "--registry", id, "--state", state]);
    expect(history.code).toBe(0);
    expect(history.stdout.trim().split("\n")).toHaveLength(1);
    expect(history.stdout).toContain("+11 -0");
  });

  it("exits 2 with one line on stderr for an unknown flag", async () => {
    const outcome = await cli(["plan", "--registry", "x", "--frobnicate"]);
    expect(outcome.code).toBe(2);
    expect(outcome.stderr.trim().split("\n")).toHaveLength(1);
    expect(outcome.stderr).toContain("frobnicate");
  });

  it("exits 2 naming the setting when the configuration is invalid", async () => {
    const { id, state } = registry();
    const outcome = await cli(["plan", "--registry", id, "--state", state, "--headroom", "lots"]);
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain("SYNC_HEADROOM (--headroom)");
    expect(outcome.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("exits 1 with one clear line when the registry does not exist", async () => {
    const missing = `/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/nosuchregistry`;
    const outcome = await cli(["plan", "--registry", missing, "--state", join(scratch, "missing.json")]);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr.trim().split("\n")).toHaveLength(1);
    expect(outcome.stderr).toContain("nosuchregistry");
    expect(outcome.stderr).not.toMatch(/Bearer|access_token|\n\s+at /);
  });

  it("refuses to fetch when ARM_ENDPOINT is plain http, before sending a token", async () => {
    const { id, state } = registry();
    const outcome = await cli(["plan", "--registry", id, "--state", state], {
      ARM_ENDPOINT: harness.arm.url.replace("https:", "http:"),
    });
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain("ARM_ENDPOINT");
  });

  it("rolls back as a dry run unless --yes is given", async () => {
    const { id, state } = registry();
    expect((await cli(["apply", "--registry", id, "--state", state])).code).toBe(0);
    const applied = harness.arm.registry(id).ipRules;
    const history = await cli(["history", "--registry", id, "--state", state, "--json"]);
    const [entry] =
      (JSON.parse(history.stdout) as { results: { entries: { id: string }[] }[] }).results[0]?.entries ?? [];
    if (entry === undefined) throw new Error("no audit entry");
    harness.arm.setIpRules(id, PEOPLE);

    const dry = await cli(["rollback", "--registry", id, "--state", state, "--to", entry.id]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("Re-run with --yes");
    expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);

    const yes = await cli(["rollback", "--registry", id, "--state", state, "--to", entry.id, "--yes"]);
    expect(yes.code).toBe(0);
    expect([...harness.arm.registry(id).ipRules].sort()).toEqual([...applied].sort());
  });
});
