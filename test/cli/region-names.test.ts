import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelopeSchema, type Envelope } from "../../src/cli/envelope.js";
import { runBuiltCli, type CliRun } from "../support/cli-process.js";
import { startHarness, type Harness } from "../support/harness.js";
import { fixturePath } from "../support/paths.js";
import { tlsPaths } from "../support/tls.js";

/**
 * Contract point 5 in a sync, on the built CLI as a separate process: a configured region that is
 * no region (`eastuss`) is a configuration error, exit 2 with "did you mean eastus" and nothing
 * written; a real region whose tag Microsoft stopped publishing stays the `tag-missing` guard
 * (exit 1, refused, the current rules kept), and so does a region newer than the bundled list of
 * ARM locations once the registry's ledger has synced it.
 */

const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];

interface TagsFile {
  values: { name: string; id: string; properties: Record<string, unknown> & { addressPrefixes: string[] } }[];
}

let harness: Harness;
let scratch: string;

beforeAll(async () => {
  harness = await startHarness({ exportIdentityEnv: false });
  scratch = mkdtempSync(join(tmpdir(), "cli-regions-"));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

function cli(args: string[], extra: Record<string, string> = {}): Promise<CliRun> {
  return runBuiltCli(args, {
    ...harness.settings({ SERVICE_TAGS_URL: SERVICE_TAGS }),
    NODE_EXTRA_CA_CERTS: tlsPaths.ca,
    HOME: scratch,
    ...extra,
  });
}

function registry(): string {
  return harness.addRegistry({ name: `reg${randomBytes(4).toString("hex")}`, location: "eastus", ipRules: PEOPLE });
}

function stateFile(): string {
  return join(scratch, `${randomBytes(4).toString("hex")}.json`);
}

/** The fixture file, edited: `edit` gets its tags and returns the ones to publish. */
function tagsFile(edit: (values: TagsFile["values"]) => TagsFile["values"]): string {
  const file = JSON.parse(readFileSync(SERVICE_TAGS, "utf8")) as TagsFile;
  file.values = edit(file.values);
  const path = join(scratch, `tags-${randomBytes(4).toString("hex")}.json`);
  writeFileSync(path, JSON.stringify(file));
  return path;
}

function parseEnvelope(stdout: string): Envelope {
  return envelopeSchema.parse(JSON.parse(stdout));
}

describe("an unknown region in a sync", () => {
  it.each(["plan", "apply"])(
    "%s --regions eastuss exits 2 with 'did you mean eastus', the envelope's top-level error and nothing written",
    async (command) => {
      const id = registry();
      const state = stateFile();
      const writes = harness.arm.writes;
      const outcome = await cli([command, "--registry", id, "--regions", "eastus,eastuss", "--state", state, "--json"]);
      expect(outcome.code).toBe(2);
      const value = parseEnvelope(outcome.stdout);
      expect(value.results).toEqual([]);
      expect(value.error?.code).toBe("InvalidConfiguration");
      expect(value.error?.message).toMatch(
        /^Setting SYNC_REGIONS \(--regions\) is invalid: region 'eastuss' \(did you mean eastus(, |\?)/,
      );
      expect(outcome.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(outcome.stderr).toMatch(/^acr-allowlist-sync: Setting SYNC_REGIONS .*did you mean eastus/);
      expect(harness.arm.writes).toBe(writes);
      expect(existsSync(state)).toBe(false);
      expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);
    },
  );

  it("names TARGET_REGISTRIES for a registry's own regions, and writes no registry of the run", async () => {
    const good = registry();
    const typo = registry();
    const state = stateFile();
    const writes = harness.arm.writes;
    const outcome = await cli(["apply", "--state", state], {
      TARGET_REGISTRIES: JSON.stringify([{ id: good }, { id: typo, regions: ["westeurop"] }]),
    });
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toMatch(
      /^acr-allowlist-sync: Setting TARGET_REGISTRIES \(regions of reg[0-9a-f]+\) is invalid: region 'westeurop' \(did you mean westeurope(, |\?)/,
    );
    expect(harness.arm.writes).toBe(writes);
    expect(harness.arm.registry(good).ipRules).toEqual(PEOPLE);
  });

  it("exits 1 under --detailed-exitcode, which keeps 2 for changes pending", async () => {
    const outcome = await cli(["plan", "--registry", registry(), "--regions", "eastuss", "--detailed-exitcode"]);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/did you mean eastus/);
  });
});

describe("a region Microsoft stopped publishing", () => {
  it("stays the tag-missing guard: exit 1, refused, the synced rules kept", async () => {
    const id = registry();
    const state = stateFile();
    const applied = await cli(["apply", "--registry", id, "--regions", "eastus,westus", "--state", state, "--quiet"]);
    expect(applied.code).toBe(0);
    const rules = harness.arm.registry(id).ipRules;
    const dropped = tagsFile((values) => values.filter((value) => value.name !== "AzureContainerRegistry.WestUS"));
    const writes = harness.arm.writes;
    const outcome = await cli(["apply", "--registry", id, "--regions", "eastus,westus", "--state", state, "--json"], {
      SERVICE_TAGS_URL: dropped,
    });
    expect(outcome.code).toBe(1);
    const value = parseEnvelope(outcome.stdout);
    expect(value.error).toBeNull();
    expect(value.results).toHaveLength(1);
    expect(value.results[0]).toMatchObject({ ok: false, outcome: "refused", error: { code: "ServiceTagMissing" } });
    expect(value.results[0]?.error?.message).toMatch(/AzureContainerRegistry\.westus not found/i);
    expect(harness.arm.writes).toBe(writes);
    expect(harness.arm.registry(id).ipRules).toEqual(rules);
  });

  it("stays the guard for a region newer than the list of locations once the ledger synced it, and is a typo without that ledger", async () => {
    // `contosoeast` is no location anyone knows: only the file and the ledger vouch for it.
    const withNew = tagsFile((values) => {
      const east = values.find((value) => value.name === "AzureContainerRegistry.EastUS");
      if (east === undefined) throw new Error("the fixture has no AzureContainerRegistry.EastUS");
      const added = { ...east, name: "AzureContainerRegistry.ContosoEast", id: "AzureContainerRegistry.ContosoEast" };
      return [...values, { ...added, properties: { ...east.properties, region: "contosoeast" } }];
    });
    const id = registry();
    const state = stateFile();
    const applied = await cli(["apply", "--registry", id, "--regions", "contosoeast", "--state", state, "--quiet"], {
      SERVICE_TAGS_URL: withNew,
    });
    expect(applied.code).toBe(0);

    const dropped = await cli(["plan", "--registry", id, "--regions", "contosoeast", "--state", state, "--json"]);
    expect(dropped.code).toBe(1);
    expect(parseEnvelope(dropped.stdout).results[0]).toMatchObject({
      outcome: "refused",
      error: { code: "ServiceTagMissing" },
    });

    const fresh = await cli(["plan", "--registry", id, "--regions", "contosoeast", "--state", stateFile(), "--json"]);
    expect(fresh.code).toBe(2);
    expect(parseEnvelope(fresh.stdout).error?.message).toMatch(/region 'contosoeast'.* is not an Azure region/);
  });
});
