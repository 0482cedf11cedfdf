import { describe, expect, it } from "vitest";
import type { SyncPolicy } from "../../src/config/settings.js";
import { CoverInfeasibleError, UsageError } from "../../src/errors.js";
import type { LedgerState } from "../../src/ledger/types.js";
import { formatAddress, parsePrefix } from "../../src/prefixes/ipv4.js";
import type { RegistrySnapshot } from "../../src/registry/types.js";
import type { SelectedTag } from "../../src/servicetags/select.js";
import { planAllowlist, type DesiredSource, type PlanInput } from "../../src/sync/plan.js";

const REF = {
  id: "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg",
  subscriptionId: "00000000-0000-0000-0000-000000000001",
  resourceGroup: "rg",
  name: "myreg",
};

const POLICY: SyncPolicy = {
  headroom: 0,
  minPrefixLength: 8,
  maxExtraAddresses: undefined,
  maxExtraRatio: undefined,
  maxRemovalShare: 0.25,
  writeWhenDefaultAllow: false,
};

function snapshot(ipRules: string[], overrides: Partial<RegistrySnapshot> = {}): RegistrySnapshot {
  return {
    ref: REF,
    location: "japaneast",
    sku: "Premium",
    provisioningState: "Succeeded",
    publicNetworkAccess: "Enabled",
    defaultAction: "Deny",
    ipRules,
    ruleLimit: 100,
    ruleLimitSource: "listUsages",
    networkRuleBypassOptions: "AzureServices",
    networkRuleBypassAllowedForTasks: true,
    replicaLocations: [],
    ...overrides,
  };
}

function tag(name: string, ipv4: string[], changeNumber = 7, ipv6Count = 0): SelectedTag {
  return {
    name,
    changeNumber,
    region: name.split(".")[1]?.toLowerCase() ?? "",
    ipv4,
    prefixes: ipv4.map((p) => parsePrefix(p, { mode: "strict" }).prefix),
    ipv6Count,
  };
}

function tags(...selected: SelectedTag[]): DesiredSource {
  return {
    kind: "service-tags",
    origin: {
      kind: "explicit",
      location: "test",
      fileName: "ServiceTags_Public_20251020.json",
      changeNumber: 374,
      cloud: "Public",
      retrievedAt: "2025-10-22T00:00:00.000Z",
      bytes: 1,
    },
    regions: selected.map((t) => t.region),
    tags: selected,
    adoptablePrefixes: selected.flatMap((t) => t.ipv4),
  };
}

function ledger(
  ownedRules: string[],
  pendingRules: string[] = [],
  appliedTagChangeNumbers: Record<string, number> = {},
): LedgerState {
  return {
    schemaVersion: 1,
    registryId: REF.id,
    ownedRules,
    pendingRules,
    appliedTagChangeNumbers,
    updatedAt: "2025-10-01T00:00:00.000Z",
    lastAuditId: undefined,
  };
}

function plan(input: Partial<PlanInput> & Pick<PlanInput, "snapshot" | "desired">) {
  return planAllowlist({ ledger: undefined, pinnedRules: [], policy: POLICY, ...input });
}

const JAPAN = tag("AzureContainerRegistry.JapanEast", ["20.18.0.0/26", "20.43.64.0/24", "40.79.186.0/25"], 12, 4);

describe("planAllowlist", () => {
  it("adds every published prefix to an empty firewalled registry and owns them", () => {
    const result = plan({ snapshot: snapshot([]), desired: tags(JAPAN) });
    expect(result.adds.map((a) => a.rule)).toEqual(["20.18.0.0/26", "20.43.64.0/24", "40.79.186.0/25"]);
    expect(result.removes).toEqual([]);
    expect(result.ownedAfter).toEqual(["20.18.0.0/26", "20.43.64.0/24", "40.79.186.0/25"]);
    expect(result.ipRulesAfter).toEqual(["20.18.0.0/26", "20.43.64.0/24", "40.79.186.0/25"]);
    expect(result.changed).toBe(true);
    expect(result.aggregation.extraAddresses).toBe(0);
    expect(result.counts).toMatchObject({ before: 0, after: 3, limit: 100, peopleRules: 0, serviceRules: 3 });
  });

  it("keeps people's rules exactly as the registry spells them and in place", () => {
    const result = plan({ snapshot: snapshot(["203.0.113.7", "198.51.100.0/24"]), desired: tags(JAPAN) });
    expect(result.ipRulesAfter.slice(0, 2)).toEqual(["203.0.113.7", "198.51.100.0/24"]);
    expect(result.kept.filter((k) => k.owner === "people").map((k) => k.rule)).toEqual([
      "203.0.113.7/32",
      "198.51.100.0/24",
    ]);
    expect(result.counts.peopleRules).toBe(2);
  });

  it("adopts rules inside the current ACR tags when there is no ledger, and says so", () => {
    const result = plan({ snapshot: snapshot(["20.43.64.0/24", "203.0.113.7/32"]), desired: tags(JAPAN) });
    expect(result.ownership).toBe("adopted");
    expect(result.ownedBefore).toEqual(["20.43.64.0/24"]);
    expect(result.warnings.map((w) => w.code)).toContain("adopted-without-ledger");
    expect(result.adds.map((a) => a.rule)).toEqual(["20.18.0.0/26", "40.79.186.0/25"]);
  });

  it("removes owned rules that are no longer published but never a person's rule inside ACR ranges", () => {
    const personsInsideAcr = "20.43.64.10/32";
    const result = plan({
      snapshot: snapshot(["20.18.0.0/26", "20.43.64.0/24", "40.79.186.0/25", "52.1.1.0/24", personsInsideAcr]),
      ledger: ledger(["20.18.0.0/26", "20.43.64.0/24", "40.79.186.0/25", "52.1.1.0/24"]),
      desired: tags(JAPAN),
    });
    expect(result.removes.map((r) => r.rule)).toEqual(["52.1.1.0/24"]);
    expect(result.removes[0]?.reason).toBe("no longer published in the selected tags");
    expect(result.ipRulesAfter).toContain(personsInsideAcr);
    expect(result.revokedRules).toEqual(["52.1.1.0/24"]);
  });

  it("treats a.b.c.d and a.b.c.d/32 as the same rule, so nothing changes", () => {
    const single = tag("AzureContainerRegistry.JapanWest", ["20.189.225.72/32"]);
    const result = plan({
      snapshot: snapshot(["20.189.225.72"]),
      ledger: ledger(["20.189.225.72/32"]),
      desired: tags(single),
    });
    expect(result.changed).toBe(false);
    expect(result.ipRulesAfter).toEqual(["20.189.225.72"]);
  });

  it("re-adds owned rules someone removed and reports them as drift", () => {
    const result = plan({
      snapshot: snapshot(["20.18.0.0/26", "40.79.186.0/25"]),
      ledger: ledger(["20.18.0.0/26", "20.43.64.0/24", "40.79.186.0/25"]),
      desired: tags(JAPAN),
    });
    expect(result.drift).toEqual(["20.43.64.0/24"]);
    expect(result.adds.map((a) => a.rule)).toEqual(["20.43.64.0/24"]);
    expect(result.adds[0]?.reason).toContain("re-added");
  });

  it("counts pending rules of an interrupted write as owned, so they never become people's", () => {
    const result = plan({
      snapshot: snapshot(["20.18.0.0/26", "20.43.64.0/24", "40.79.186.0/25", "52.1.1.0/24"]),
      ledger: ledger(["20.18.0.0/26"], ["20.43.64.0/24", "40.79.186.0/25", "52.1.1.0/24"]),
      desired: tags(JAPAN),
    });
    expect(result.counts.peopleRules).toBe(0);
    expect(result.removes.map((r) => r.rule)).toEqual(["52.1.1.0/24"]);
  });

  it("aggregates to fit the budget left by people's rules and the headroom", () => {
    const many = tag(
      "AzureContainerRegistry.EastUS",
      Array.from({ length: 8 }, (_, i) => `20.${i}.0.0/24`),
    );
    const people = Array.from({ length: 93 }, (_, i) => `198.51.${i}.1/32`);
    const result = plan({ snapshot: snapshot(people), desired: tags(many), policy: { ...POLICY, headroom: 2 } });
    expect(result.counts.budget).toBe(5);
    expect(result.ownedAfter.length).toBeLessThanOrEqual(5);
    expect(result.counts.after).toBeLessThanOrEqual(100 - 2);
    expect(result.aggregation.extraAddresses).toBeGreaterThan(0);
    for (const text of many.ipv4) {
      const p = parsePrefix(text, { mode: "strict" }).prefix;
      expect(
        result.ownedAfter.some((rule) => {
          const o = parsePrefix(rule, { mode: "strict" }).prefix;
          return o.base <= p.base && o.base + 2 ** (32 - o.length) >= p.base + 2 ** (32 - p.length);
        }),
      ).toBe(true);
    }
  });

  it("refuses when people's rules leave no room, naming the numbers", () => {
    const people = Array.from({ length: 100 }, (_, i) => `198.51.${i}.1/32`);
    expect(() => plan({ snapshot: snapshot(people), desired: tags(JAPAN) })).toThrow(CoverInfeasibleError);
  });

  it("keeps pinned rules present and owned, without duplicating one a person already holds", () => {
    const result = plan({
      snapshot: snapshot(["203.0.113.7"]),
      desired: tags(JAPAN),
      pinnedRules: ["203.0.113.7", "192.0.2.0/28"],
    });
    expect(result.adds.map((a) => a.rule)).toContain("192.0.2.0/28");
    expect(result.adds.map((a) => a.rule)).not.toContain("203.0.113.7/32");
    expect(result.ipRulesAfter.filter((r) => r.startsWith("203.0.113.7"))).toHaveLength(1);
  });

  it("does not count a rule replaced by a covering aggregate as a revocation", () => {
    const small = tag("AzureContainerRegistry.X", ["20.0.0.0/25", "20.0.0.128/25"]);
    const result = plan({ snapshot: snapshot(["20.0.0.0/25"]), ledger: ledger(["20.0.0.0/25"]), desired: tags(small) });
    expect(result.adds.map((a) => a.rule)).toEqual(["20.0.0.0/24"]);
    expect(result.removes.map((r) => r.rule)).toEqual(["20.0.0.0/25"]);
    expect(result.removes[0]?.reason).toBe("replaced by 20.0.0.0/24");
    expect(result.revokedRules).toEqual([]);
  });

  it("warns about the tasks bypass, defaultAction Allow and skipped IPv6 without changing anything about them", () => {
    const result = plan({
      snapshot: snapshot([], { networkRuleBypassAllowedForTasks: false, defaultAction: "Allow" }),
      desired: tags(JAPAN),
    });
    expect(result.warnings.map((w) => w.code)).toEqual(
      expect.arrayContaining(["bypass-for-tasks-disabled", "default-action-allow", "ipv6-skipped"]),
    );
    expect(result.registry.defaultAction).toBe("Allow");
  });

  it("leaves an unparseable registry value to people and keeps it", () => {
    const result = plan({ snapshot: snapshot(["not-an-ip"]), desired: tags(JAPAN) });
    expect(result.ipRulesAfter).toContain("not-an-ip");
    expect(result.warnings.map((w) => w.code)).toContain("unparseable-rule");
  });

  it("restores the owned rules of an audit entry on rollback, people's rules untouched", () => {
    const result = plan({
      snapshot: snapshot(["20.18.0.0/26", "203.0.113.7"]),
      ledger: ledger(["20.18.0.0/26"]),
      desired: { kind: "rollback", auditId: "20251001T000000000Z-abcdef", ownedRules: ["20.43.64.0/24"] },
    });
    expect(result.adds.map((a) => a.rule)).toEqual(["20.43.64.0/24"]);
    expect(result.removes.map((r) => r.rule)).toEqual(["20.18.0.0/26"]);
    expect(result.ipRulesAfter).toContain("203.0.113.7");
  });

  it("lists selected tags older than the ones applied before, and only those", () => {
    const result = plan({
      snapshot: snapshot([]),
      ledger: ledger([], [], { "AzureContainerRegistry.JapanEast": 13, "AzureContainerRegistry.Other": 99 }),
      desired: tags(JAPAN),
    });
    expect(result.staleTags).toEqual([
      { name: "AzureContainerRegistry.JapanEast", changeNumber: 12, appliedChangeNumber: 13 },
    ]);
    expect(
      plan({
        snapshot: snapshot([]),
        ledger: ledger([], [], { "AzureContainerRegistry.JapanEast": 12 }),
        desired: tags(JAPAN),
      }).staleTags,
    ).toEqual([]);
  });

  it("produces the same plan for the same input", () => {
    const input = { snapshot: snapshot(["203.0.113.7"]), desired: tags(JAPAN) };
    expect(JSON.stringify(plan(input))).toBe(JSON.stringify(plan(input)));
  });
});

describe("planAllowlist at the limits", () => {
  it("refuses at once, as a usage error with the figures, a cover whose work is over the bound", () => {
    // 60,000 separate /32s into 40,000 rules: 2.4·10^9 units of work, over the 2·10^9 bound.
    const separate = Array.from({ length: 60_000 }, (_, index) => `${formatAddress(0x0a000000 + index * 4)}/32`);
    const big = tag("AzureContainerRegistry.JapanEast", separate);
    let error: unknown;
    try {
      plan({ snapshot: snapshot([], { ruleLimit: 40_000 }), desired: tags(big) });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).details).toMatchObject({ work: 2_400_000_000, budget: 40_000, leaves: 60_000 });
    expect((error as UsageError).message).toContain("2,400,000,000");
  });
});
