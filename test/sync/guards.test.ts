import { describe, expect, it } from "vitest";
import type { SyncPolicy } from "../../src/config/settings.js";
import { GuardError } from "../../src/errors.js";
import { evaluateGuards, guardErrorFor } from "../../src/sync/guards.js";
import type { Plan } from "../../src/sync/plan.js";

const POLICY: SyncPolicy = {
  headroom: 0,
  minPrefixLength: 8,
  maxExtraAddresses: undefined,
  maxExtraRatio: undefined,
  maxRemovalShare: 0.25,
  writeWhenDefaultAllow: false,
};

function basePlan(overrides: Partial<Plan> = {}, registry: Partial<Plan["registry"]> = {}): Plan {
  return {
    schemaVersion: 1,
    registry: {
      id: "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg",
      name: "myreg",
      location: "japaneast",
      sku: "Premium",
      provisioningState: "Succeeded",
      publicNetworkAccess: "Enabled",
      defaultAction: "Deny",
      networkRuleBypassOptions: "AzureServices",
      networkRuleBypassAllowedForTasks: true,
      ...registry,
    },
    source: {
      kind: "service-tags",
      origin: {
        kind: "explicit",
        location: "x",
        fileName: "f.json",
        changeNumber: 1,
        cloud: "Public",
        retrievedAt: "",
        bytes: 1,
      },
      regions: ["japaneast"],
      tags: [],
    },
    ownership: "ledger",
    adds: [{ rule: "20.0.0.0/24", owner: "service", reason: "published" }],
    removes: [],
    kept: [],
    ipRulesAfter: ["20.0.0.0/24"],
    ownedAfter: ["20.0.0.0/24"],
    ownedBefore: [],
    counts: {
      before: 0,
      after: 1,
      limit: 100,
      limitSource: "listUsages",
      peopleRules: 0,
      pinnedRules: 0,
      grantRules: 0,
      serviceRules: 1,
      headroom: 0,
      budget: 100,
    },
    aggregation: {
      publishedPrefixes: 1,
      mergedPrefixes: 1,
      targetAddresses: 256,
      coveredAddresses: 256,
      extraAddresses: 0,
      minPrefixLength: 8,
    },
    drift: [],
    staleTags: [],
    revokedRules: [],
    changed: true,
    warnings: [],
    guards: [],
    grants: { clock: null, active: [], expired: [] },
    ...overrides,
  };
}

const guardsOf = (plan: Plan, policy: SyncPolicy = POLICY, force = false) =>
  evaluateGuards(plan, { policy, force }).map((f) => f.guard);

describe("evaluateGuards", () => {
  it("passes a healthy plan", () => {
    expect(guardsOf(basePlan())).toEqual([]);
  });

  it("never trips on a plan that writes nothing", () => {
    expect(guardsOf(basePlan({ changed: false }, { sku: "Basic", defaultAction: "Allow" }))).toEqual([]);
  });

  it.each([
    ["sku", { sku: "Standard" }],
    ["provisioning-state", { provisioningState: "Updating" }],
    ["public-network-disabled", { publicNetworkAccess: "Disabled" }],
    ["default-action-allow", { defaultAction: "Allow" as const }],
  ])("trips %s on the registry's state", (guard, registry) => {
    expect(guardsOf(basePlan({}, registry))).toContain(guard);
  });

  it("lets defaultAction Allow through when the operator opts in", () => {
    expect(guardsOf(basePlan({}, { defaultAction: "Allow" }), { ...POLICY, writeWhenDefaultAllow: true })).toEqual([]);
  });

  it("trips mass-removal above the share of owned rules, and a forced run passes", () => {
    const owned = [
      "20.0.0.0/24",
      "20.0.1.0/24",
      "20.0.2.0/24",
      "20.0.3.0/24",
      "20.0.4.0/24",
      "20.0.5.0/24",
      "20.0.6.0/24",
      "20.0.7.0/24",
    ];
    const plan = basePlan({ ownedBefore: owned, revokedRules: owned.slice(0, 3) });
    expect(guardsOf(plan)).toEqual(["mass-removal"]);
    expect(guardsOf(plan, POLICY, true)).toEqual([]);
    expect(guardsOf(basePlan({ ownedBefore: owned, revokedRules: owned.slice(0, 2) }))).toEqual([]);
  });

  it("trips stale-source for a file older than the one applied before, and a forced run passes", () => {
    const plan = basePlan({
      staleTags: [{ name: "AzureContainerRegistry.JapanEast", changeNumber: 7, appliedChangeNumber: 8 }],
    });
    expect(guardsOf(plan)).toEqual(["stale-source"]);
    expect(evaluateGuards(plan, { policy: POLICY, force: false })[0]?.message).toContain(
      "AzureContainerRegistry.JapanEast changeNumber 7 < 8",
    );
    expect(guardsOf(plan, POLICY, true)).toEqual([]);
  });

  it("always allows one revocation, so a one-rule region can move", () => {
    expect(guardsOf(basePlan({ ownedBefore: ["20.0.0.0/24"], revokedRules: ["20.0.0.0/24"] }))).toEqual([]);
  });

  it("refuses to leave a Deny registry without rules", () => {
    expect(
      guardsOf(
        basePlan({ ipRulesAfter: [], adds: [], removes: [{ rule: "20.0.0.0/24", owner: "service", reason: "x" }] }),
      ),
    ).toContain("empty-deny-list");
  });

  it("refuses a source whose selected tags hold no IPv4 prefix", () => {
    expect(
      guardsOf(
        basePlan({
          aggregation: {
            publishedPrefixes: 0,
            mergedPrefixes: 0,
            targetAddresses: 0,
            coveredAddresses: 0,
            extraAddresses: 0,
            minPrefixLength: 8,
          },
        }),
      ),
    ).toContain("source-too-small");
  });

  it("turns findings into one typed error that lists them all", () => {
    const plan = basePlan({}, { sku: "Basic", provisioningState: "Failed" });
    const error = guardErrorFor(plan, evaluateGuards(plan, { policy: POLICY, force: false }));
    expect(error).toBeInstanceOf(GuardError);
    expect(error.guard).toBe("sku");
    expect(error.details.guards).toEqual(["sku", "provisioning-state"]);
    expect(error.message).toContain("Nothing written to myreg");
  });
});
