import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelopeSchema } from "../../src/cli/envelope.js";
import { MAX_COVER_WORK } from "../../src/prefixes/cover.js";
import { runBuiltCli, type CliRun } from "../support/cli-process.js";
import { startHarness, type Harness } from "../support/harness.js";
import { fixturePath } from "../support/paths.js";
import { tlsPaths } from "../support/tls.js";

/**
 * Contract point 7 in a sync, on the built CLI as a separate process: the planner refuses at once,
 * with the figures, a cover whose work (prefixes × budget) is over the documented bound, instead of
 * running for minutes. It takes a registry with a large rule quota and a tag of 100,000 separate
 * addresses to get there (ACR's own quota of 100–200 rules would need 20 million prefixes).
 */

const PREFIXES = 100_000;
const RULE_LIMIT = 25_010;

let harness: Harness;
let scratch: string;
let tags: string;

beforeAll(async () => {
  harness = await startHarness({ exportIdentityEnv: false });
  scratch = mkdtempSync(join(tmpdir(), "cli-planner-limits-"));
  const file = JSON.parse(readFileSync(fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json"), "utf8")) as {
    values: { name: string; properties: { addressPrefixes: string[] } }[];
  };
  const eastUs = file.values.find((value) => value.name === "AzureContainerRegistry.EastUS");
  if (eastUs === undefined) throw new Error("the fixture has no AzureContainerRegistry.EastUS");
  // Every other address of 10.0.0.0/8: nothing merges, so the cover has 100,000 leaves.
  eastUs.properties.addressPrefixes = Array.from(
    { length: PREFIXES },
    (_, i) => `10.${(2 * i) >>> 16}.${((2 * i) >>> 8) & 255}.${(2 * i) & 255}/32`,
  );
  tags = join(scratch, "tags.json");
  writeFileSync(tags, JSON.stringify(file));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

function cli(args: string[]): Promise<CliRun> {
  return runBuiltCli(args, {
    ...harness.settings({ SERVICE_TAGS_URL: tags }),
    NODE_EXTRA_CA_CERTS: tlsPaths.ca,
    HOME: scratch,
  });
}

describe("the planner's work bound", () => {
  it.each(["plan", "apply"])(
    "%s refuses a cover over the bound at once, as a usage error with the figures, and writes nothing",
    async (command) => {
      const id = harness.addRegistry({ name: `big${randomBytes(4).toString("hex")}`, ruleLimit: RULE_LIMIT });
      const writes = harness.arm.writes;
      const state = join(scratch, `${randomBytes(4).toString("hex")}.json`);
      const outcome = await cli([command, "--registry", id, "--regions", "eastus", "--state", state, "--json"]);
      expect(outcome.code).toBe(1);
      const value = envelopeSchema.parse(JSON.parse(outcome.stdout));
      expect(value.results).toHaveLength(1);
      const [result] = value.results;
      expect(result).toMatchObject({ registry: id, ok: false, outcome: "failed", error: { code: "Usage" } });
      const budget = Number(/ in ([\d,]+) rules is /.exec(result?.error?.message ?? "")?.[1]?.replaceAll(",", ""));
      expect(budget * PREFIXES).toBeGreaterThan(MAX_COVER_WORK);
      expect(result?.error?.message).toContain(`A cover of ${PREFIXES.toLocaleString("en-US")} prefixes in `);
      expect(result?.error?.message).toContain(`over the bound of ${MAX_COVER_WORK.toLocaleString("en-US")}`);
      expect(result?.error?.remedy).toMatch(/^Allow at most [\d,]+ rules, or at least 100,000/);
      expect(harness.arm.writes).toBe(writes);
      expect(harness.arm.registry(id).ipRules).toEqual([]);
    },
  );
});
