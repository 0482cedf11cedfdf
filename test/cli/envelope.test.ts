import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelopeSchema, type Envelope } from "../../src/cli/envelope.js";
import { runBuiltCli, type CliRun } from "../support/cli-process.js";
import { startHarness, TEST_SUBSCRIPTION, type Harness } from "../support/harness.js";
import { fixturePath } from "../support/paths.js";
import { tlsPaths } from "../support/tls.js";

/**
 * Contract points 1 and 2 from outside: one JSON envelope on stdout for plan, apply, rollback and
 * history, success or failure, and the exit codes (plain and `plan --detailed-exitcode`).
 */

const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];
const MISSING = `/subscriptions/${TEST_SUBSCRIPTION}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/nosuchregistry`;

let harness: Harness;
let scratch: string;

beforeAll(async () => {
  harness = await startHarness({ exportIdentityEnv: false });
  scratch = mkdtempSync(join(tmpdir(), "cli-envelope-"));
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

function registry(spec: { sku?: "Basic" | "Premium" } = {}): string {
  return harness.addRegistry({ name: `env${randomBytes(4).toString("hex")}`, ipRules: PEOPLE, ...spec });
}

function stateFile(): string {
  return join(scratch, `${randomBytes(4).toString("hex")}.json`);
}

/** Exactly one JSON document on stdout, valid against the published schema. */
function parseEnvelope(stdout: string): Envelope {
  return envelopeSchema.parse(JSON.parse(stdout));
}

describe("the JSON envelope of the built CLI", () => {
  it("lists one result per configured registry, in order, failed ones included, and exits 1", async () => {
    const first = registry();
    const second = registry();
    const outcome = await cli(["plan", "--state", stateFile(), "--json"], {
      TARGET_REGISTRIES: [first, MISSING, second].join(","),
    });
    expect(outcome.code).toBe(1);
    const value = parseEnvelope(outcome.stdout);
    expect(value).toMatchObject({ schemaVersion: 1, command: "plan", error: null });
    expect(value.results.map((result) => result.registry)).toEqual([first, MISSING, second]);
    expect(value.results.map((result) => [result.ok, result.outcome])).toEqual([
      [true, "dry-run"],
      [false, "failed"],
      [true, "dry-run"],
    ]);
    const failed = value.results[1];
    expect(failed?.plan).toBeNull();
    expect(failed?.error).toMatchObject({ code: "RegistryNotFound" });
    expect(failed?.error?.remedy.length).toBeGreaterThan(0);
    expect(value.results[0]?.plan).toMatchObject({ changed: true, registry: { id: first } });
    expect(outcome.stderr).toMatch(/^acr-allowlist-sync: nosuchregistry: /);
  });

  it("prints the envelope with no result and a top-level error for a usage error, and exits 2", async () => {
    const outcome = await cli(["plan", "--registry", registry(), "--frobnicate", "--json"]);
    expect(outcome.code).toBe(2);
    const value = parseEnvelope(outcome.stdout);
    expect(value.results).toEqual([]);
    expect(value.error).toMatchObject({ code: "Usage" });
    expect(value.error?.message).toContain("frobnicate");
  });

  it("prints the envelope with a top-level error naming the setting for a configuration error, and exits 2", async () => {
    const outcome = await cli([
      "apply",
      "--registry",
      registry(),
      "--state",
      stateFile(),
      "--headroom",
      "lots",
      "--json",
    ]);
    expect(outcome.code).toBe(2);
    const value = parseEnvelope(outcome.stdout);
    expect(value).toMatchObject({ command: "apply", results: [], error: { code: "InvalidConfiguration" } });
    expect(value.error?.message).toContain("SYNC_HEADROOM (--headroom)");
  });

  it("reports a guard's stop as refused with the refused plan, and exits 1", async () => {
    const id = registry({ sku: "Basic" });
    const outcome = await cli(["apply", "--registry", id, "--state", stateFile(), "--json"]);
    expect(outcome.code).toBe(1);
    const [result] = parseEnvelope(outcome.stdout).results;
    expect(result).toMatchObject({ registry: id, ok: false, outcome: "refused", error: { code: "GuardTripped" } });
    expect(result?.plan).toMatchObject({
      changed: true,
      guards: expect.arrayContaining([{ guard: "sku", message: expect.any(String) }]),
    });
    expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);
  });

  it("reports applied, then unchanged, with the audit id, and history's entries in each result", async () => {
    const id = registry();
    const state = stateFile();
    const applied = parseEnvelope((await cli(["apply", "--registry", id, "--state", state, "--json"])).stdout);
    expect(applied.results[0]).toMatchObject({ ok: true, outcome: "applied", error: null });
    const auditId = applied.results[0]?.auditId;
    expect(auditId).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{6}$/);
    const again = await cli(["apply", "--registry", id, "--state", state, "--json"]);
    expect(again.code).toBe(0);
    expect(parseEnvelope(again.stdout).results[0]).toMatchObject({ outcome: "unchanged" });

    const history = await cli(["history", "--registry", id, "--state", state, "--json"]);
    expect(history.code).toBe(0);
    const listed = parseEnvelope(history.stdout);
    expect(listed.command).toBe("history");
    expect(listed.results[0]).toMatchObject({ registry: id, ok: true, error: null, entries: [{ id: auditId }] });

    const rollback = await cli(["rollback", "--registry", id, "--state", state, "--to", String(auditId), "--json"]);
    expect(rollback.code).toBe(0);
    expect(parseEnvelope(rollback.stdout)).toMatchObject({ command: "rollback", results: [{ outcome: "dry-run" }] });
  });
});

describe("plan --detailed-exitcode", () => {
  it("exits 2 with changes pending, 0 once applied, 3 when a guard would refuse, 1 on an error", async () => {
    const id = registry();
    const state = stateFile();
    expect((await cli(["plan", "--registry", id, "--state", state, "--detailed-exitcode"])).code).toBe(2);
    expect((await cli(["apply", "--registry", id, "--state", state])).code).toBe(0);
    expect((await cli(["plan", "--registry", id, "--state", state, "--detailed-exitcode"])).code).toBe(0);

    const basic = registry({ sku: "Basic" });
    const refused = await cli(["plan", "--registry", basic, "--state", stateFile(), "--detailed-exitcode"]);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toContain("guard sku:");
    expect((await cli(["plan", "--registry", basic, "--state", stateFile()])).code).toBe(1);

    expect((await cli(["plan", "--registry", MISSING, "--state", stateFile(), "--detailed-exitcode"])).code).toBe(1);
    expect((await cli(["plan", "--registry", id, "--bogus", "--detailed-exitcode"])).code).toBe(1);
  });
});
