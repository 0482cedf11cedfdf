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
 * `plan|apply --discover --concurrency N` through the built CLI: Resource Graph in the ARM emulator
 * finds the tagged registries, the JSON envelope has one result per registry (a bad tag is a failed
 * result naming the tag), and the flags are checked as a contract.
 */

const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
let harness: Harness;
let scratch: string;

beforeAll(async () => {
  harness = await startHarness({ exportIdentityEnv: false });
  scratch = mkdtempSync(join(tmpdir(), "cli-discover-"));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

function cli(args: string[]): Promise<CliRun> {
  return runBuiltCli(args, {
    ...harness.settings({ SERVICE_TAGS_URL: SERVICE_TAGS }),
    NODE_EXTRA_CA_CERTS: tlsPaths.ca,
    HOME: scratch,
  });
}

interface Result {
  readonly registry: string;
  readonly ok: boolean;
  readonly outcome: string;
  readonly error: { readonly code: string; readonly message: string } | null;
}

describe("acr-allowlist-sync --discover", () => {
  it("plans and applies every tagged registry, a bad tag failing only its own result", async () => {
    const value = randomBytes(4).toString("hex");
    const tag = `acr-allowlist-sync=${value}`;
    const ids = [0, 1, 2].map((i) =>
      harness.addRegistry({ name: `disc${i}${value}`, tags: { "acr-allowlist-sync": value } }),
    );
    const bad = harness.addRegistry({
      name: `discbad${value}`,
      tags: { "acr-allowlist-sync": value, "acr-allowlist-sync.headroom": "many" },
    });
    const state = join(scratch, `${value}.json`);

    const plan = await cli([
      "plan",
      "--discover",
      "--discovery-tag",
      tag,
      "--concurrency",
      "2",
      "--state",
      state,
      "--json",
    ]);
    expect(plan.code).toBe(1);
    const planned = (JSON.parse(plan.stdout) as { results: Result[] }).results;
    expect(planned.map((r) => [r.registry, r.outcome])).toEqual([[bad, "failed"], ...ids.map((id) => [id, "dry-run"])]);
    expect(planned[0]?.error?.code).toBe("InvalidRegistryTag");
    expect(planned[0]?.error?.message).toContain("acr-allowlist-sync.headroom='many'");
    expect(ids.every((id) => harness.arm.registry(id).ipRules.length === 0)).toBe(true);

    const apply = await cli(["apply", "--discover", "--discovery-tag", tag, "--state", state, "--json"]);
    expect(apply.code).toBe(1);
    const applied = (JSON.parse(apply.stdout) as { results: Result[] }).results;
    expect(
      applied.filter((r) => r.outcome === "applied").map((r) => r.registry),
      JSON.stringify(applied.map((r) => [r.outcome, r.error?.message])),
    ).toEqual(ids);
    expect(ids.every((id) => harness.arm.registry(id).ipRules.length === 11)).toBe(true);
    expect(harness.arm.registry(bad).ipRules).toEqual([]);
  });

  it("checks pinned rules and regions from tags like the settings: a bad one fails only its registry, naming the tag", async () => {
    const value = randomBytes(4).toString("hex");
    const tags = { "acr-allowlist-sync": value };
    const pinned = (rules: string): Record<string, string> => ({ ...tags, "acr-allowlist-sync.pinned-rules": rules });
    const good = harness.addRegistry({ name: `pingood${value}`, tags: pinned("203.0.113.10, 198.51.100.0/24") });
    const bad = [
      ["wide", pinned("0.0.0.0/0"), /pinned-rules='0\.0\.0\.0\/0'.*\/0, wider than SYNC_MIN_PREFIX_LENGTH \/16/],
      [
        "eight",
        pinned("203.0.113.10 10.0.0.0/8"),
        /pinned rule '10\.0\.0\.0\/8' is \/8, wider than SYNC_MIN_PREFIX_LENGTH \/16/,
      ],
      ["host", pinned("203.0.113.10/24"), /pinned rule '203\.0\.113\.10\/24' is not a valid IPv4 rule/],
      ["invalid", pinned("300.1.1.1"), /pinned rule '300\.1\.1\.1' is not a valid IPv4 rule/],
      [
        "region",
        { ...tags, "acr-allowlist-sync.regions": "westeurop" },
        /^Tag acr-allowlist-sync\.regions on registry .* region 'westeurop' \(did you mean westeurope/,
      ],
    ] as const;
    const badIds = bad.map(([name, registryTags]) =>
      harness.addRegistry({ name: `pin${name}${value}`, tags: registryTags }),
    );
    const writes = harness.arm.writes;

    const apply = await cli([
      "apply",
      "--discover",
      "--discovery-tag",
      `acr-allowlist-sync=${value}`,
      "--state",
      join(scratch, `${value}.json`),
      "--json",
    ]);
    expect(apply.code).toBe(1);
    const results = JSON.parse(apply.stdout) as { error: unknown; results: Result[] };
    expect(results.error).toBeNull();
    const byId = new Map(results.results.map((r) => [r.registry, r]));
    expect(byId.get(good)?.outcome).toBe("applied");
    expect(harness.arm.registry(good).ipRules).toEqual(expect.arrayContaining(["203.0.113.10/32", "198.51.100.0/24"]));
    bad.forEach(([, , message], index) => {
      const id = badIds[index] ?? "";
      expect(byId.get(id)).toMatchObject({ ok: false, outcome: "failed", error: { code: "InvalidRegistryTag" } });
      expect(byId.get(id)?.error?.message).toMatch(message);
      expect(harness.arm.registry(id).ipRules).toEqual([]);
    });
    expect(harness.arm.writes).toBe(writes + 1);
  });

  it("refuses --discovery-tag without --discover, and --discover without a tag, with exit 2", async () => {
    const withoutDiscover = await cli(["plan", "--discovery-tag", "a=b", "--json"]);
    expect(withoutDiscover.code).toBe(2);
    expect(JSON.parse(withoutDiscover.stdout)).toMatchObject({ error: { code: "Usage" } });
    expect(withoutDiscover.stderr).toContain("only apply with --discover");
    const withoutTag = await cli(["plan", "--discover"]);
    expect(withoutTag.code).toBe(2);
    expect(withoutTag.stderr).toContain("--discover needs a tag");
  });

  it.each(["0", "65", "two", "-1"])("refuses --concurrency %s with exit 2", async (value) => {
    const outcome = await cli(["plan", "--discover", "--discovery-tag", "a=b", "--concurrency", value]);
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain("--concurrency");
  });
});
