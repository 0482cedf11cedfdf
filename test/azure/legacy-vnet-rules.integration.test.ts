import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GuardError } from "../../src/errors.js";
import { runInvocation } from "../../src/sync/invocation.js";
import { startHarness, type Harness } from "../support/harness.js";

/**
 * A registry with legacy service-endpoint virtual-network rules: the 2025-11-01 model cannot see
 * them and the PATCH replaces the whole networkRuleSet (the emulator drops them like ACR would),
 * so the run must refuse to write and say what to do.
 */

const PEOPLE = ["203.0.113.10"];
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness.close();
});

function setup(legacyVirtualNetworkRules: number) {
  const id = harness.addRegistry({
    name: `reg${randomBytes(4).toString("hex")}`,
    ipRules: PEOPLE,
    legacyVirtualNetworkRules,
  });
  const runtime = harness.runtime({
    TARGET_REGISTRIES: id,
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `ledger-${randomBytes(6).toString("hex")}`,
  });
  return { id, runtime };
}

describe("legacy virtual-network rules", () => {
  it("refuses to write a registry whose listUsages shows VNetRules in use, and keeps them", async () => {
    const { id, runtime } = setup(2);
    const writesBefore = harness.arm.writes;
    const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
      mode: "apply",
      trigger: "test",
      actor: "test",
    });
    expect(outcome?.ok).toBe(false);
    const error = outcome?.ok === false ? outcome.error : undefined;
    expect(error).toBeInstanceOf(GuardError);
    expect((error as GuardError).guard).toBe("legacy-vnet-rules");
    expect((error as GuardError).message).toContain("2 legacy virtual-network rule(s)");
    expect((error as GuardError).message).toMatch(/az acr network-rule/);
    expect(harness.arm.writes).toBe(writesBefore);
    expect(harness.arm.registry(id).legacyVirtualNetworkRules).toBe(2);
    expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);
  });

  it("shows the guard in a dry run, so the operator sees it before any apply", async () => {
    const { runtime } = setup(1);
    const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
      mode: "plan",
      trigger: "test",
      actor: "test",
    });
    expect(outcome?.ok).toBe(true);
    const plan = outcome?.ok === true ? outcome.result.plan : undefined;
    expect(plan?.registry.legacyVirtualNetworkRules).toBe(1);
    expect(plan?.guards.map((g) => g.guard)).toContain("legacy-vnet-rules");
  });

  it("writes as usual when VNetRules reports none", async () => {
    const { id, runtime } = setup(0);
    const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
      mode: "apply",
      trigger: "test",
      actor: "test",
    });
    expect(outcome?.ok).toBe(true);
    expect(harness.arm.registry(id).ipRules.length).toBeGreaterThan(PEOPLE.length);
  });
});

describe("reading VNetRules from listUsages", () => {
  it("reports the legacy rule count in the snapshot, and 0 when the entry is absent", async () => {
    const withRules = harness.addRegistry({
      name: `reg${randomBytes(4).toString("hex")}`,
      legacyVirtualNetworkRules: 3,
    });
    const runtime = harness.runtime({
      TARGET_REGISTRIES: withRules,
      AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    });
    const ref = runtime.settings.targets[0]?.ref;
    if (ref === undefined) throw new Error("no target");
    expect((await runtime.ports.registry.read(ref)).legacyVirtualNetworkRules).toBe(3);
  });
});
