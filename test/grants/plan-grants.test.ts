import { describe, expect, it } from "vitest";
import type { SyncPolicy } from "../../src/config/settings.js";
import { CoverInfeasibleError } from "../../src/errors.js";
import { decideGrantChange } from "../../src/grants/change.js";
import type { Grant, LedgerState } from "../../src/ledger/types.js";
import { parsePrefix } from "../../src/prefixes/ipv4.js";
import type { RegistrySnapshot } from "../../src/registry/types.js";
import type { SelectedTag } from "../../src/servicetags/select.js";
import { evaluateGuards } from "../../src/sync/guards.js";
import { planAllowlist, type DesiredSource, type PlanInput } from "../../src/sync/plan.js";

/** The planner with temporary grants: pure, plain data in and out. */

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
const NOW = new Date("2026-03-01T12:00:00.000Z");
const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];
/** Four /24s in four different /16s: the cover needs 4 rules for them at a /16 floor. */
const TAG_PREFIXES = ["20.1.0.0/24", "20.2.0.0/24", "20.3.0.0/24", "20.4.0.0/24"];

function snapshot(ipRules: readonly string[], ruleLimit = 100): RegistrySnapshot {
  return {
    ref: REF,
    location: "japaneast",
    sku: "Premium",
    provisioningState: "Succeeded",
    publicNetworkAccess: "Enabled",
    defaultAction: "Deny",
    ipRules,
    ruleLimit,
    ruleLimitSource: "listUsages",
    networkRuleBypassOptions: "AzureServices",
    networkRuleBypassAllowedForTasks: true,
    replicaLocations: [],
  };
}

function desired(prefixes: readonly string[] = TAG_PREFIXES): DesiredSource {
  const tag: SelectedTag = {
    name: "AzureContainerRegistry.JapanEast",
    changeNumber: 7,
    region: "japaneast",
    ipv4: [...prefixes],
    prefixes: prefixes.map((p) => parsePrefix(p, { mode: "strict" }).prefix),
    ipv6Count: 0,
  };
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
    regions: ["japaneast"],
    tags: [tag],
    adoptablePrefixes: [...prefixes],
  };
}

function grant(rule: string, expiresAt: string, extra: Partial<Grant> = {}): Grant {
  return {
    id: `g${rule.replace(/\D/g, "").padEnd(12, "0").slice(0, 12)}`,
    rule,
    createdAt: "2026-03-01T08:00:00.000Z",
    expiresAt,
    grantedBy: "cli:alice@laptop",
    reason: "portal access for incident 4711",
    ...extra,
  };
}

function ledger(ownedRules: readonly string[], grants: readonly Grant[] = []): LedgerState {
  return {
    schemaVersion: 1,
    registryId: REF.id,
    ownedRules: [...ownedRules],
    pendingRules: [],
    appliedTagChangeNumbers: {},
    updatedAt: "2026-03-01T00:00:00.000Z",
    lastAuditId: undefined,
    grants: [...grants],
  };
}

function plan(input: Partial<PlanInput> & Pick<PlanInput, "snapshot">) {
  return planAllowlist({
    ledger: undefined,
    desired: desired(),
    pinnedRules: [],
    policy: POLICY,
    now: NOW,
    ...input,
  });
}

describe("the planner with temporary grants", () => {
  it("keeps an active grant's rule as owned, takes it out of the cover's budget, and does not count it as people's", () => {
    const active = grant("192.0.2.7/32", "2026-03-01T20:00:00.000Z");
    const result = plan({
      snapshot: snapshot([...PEOPLE, ...TAG_PREFIXES, "192.0.2.7/32"]),
      ledger: ledger([...TAG_PREFIXES, "192.0.2.7/32"], [active]),
    });
    expect(result.changed).toBe(false);
    expect(result.counts.grantRules).toBe(1);
    expect(result.counts.peopleRules).toBe(2);
    expect(result.counts.budget).toBe(100 - 2 - 1);
    expect(result.ownedAfter).toContain("192.0.2.7/32");
    expect(result.kept.find((r) => r.rule === "192.0.2.7/32")?.owner).toBe("grant");
    expect(result.grants.active.map((g) => g.id)).toEqual([active.id]);
    expect(result.grants.expired).toEqual([]);
    expect(result.grants.clock).toBe(NOW.toISOString());
    expect(plan({ snapshot: snapshot([...PEOPLE]), ledger: ledger([]) }).grants.clock).toBeNull();
  });

  it("removes a grant whose expiry is at or before the run clock, and only that rule", () => {
    const expired = grant("192.0.2.7/32", NOW.toISOString());
    const result = plan({
      snapshot: snapshot([...PEOPLE, ...TAG_PREFIXES, "192.0.2.7/32"]),
      ledger: ledger([...TAG_PREFIXES, "192.0.2.7/32"], [expired]),
    });
    expect(result.removes).toEqual([
      { rule: "192.0.2.7/32", owner: "grant", reason: `grant by cli:alice@laptop expired at ${NOW.toISOString()}` },
    ]);
    expect(result.adds).toEqual([]);
    expect(result.ipRulesAfter).toEqual([...PEOPLE, ...TAG_PREFIXES]);
    expect(result.ownedAfter).not.toContain("192.0.2.7/32");
    expect(result.grants.expired.map((g) => g.id)).toEqual([expired.id]);
  });

  it("does not weigh expired grants in the mass-removal guard, even when many end at once", () => {
    const grants = ["192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "192.0.2.4/32", "192.0.2.5/32"].map((rule) =>
      grant(rule, "2026-03-01T11:00:00.000Z"),
    );
    const rules = grants.map((g) => g.rule);
    const result = plan({
      snapshot: snapshot([...PEOPLE, ...TAG_PREFIXES, ...rules]),
      ledger: ledger([...TAG_PREFIXES, ...rules], grants),
    });
    expect(result.removes).toHaveLength(5);
    expect(result.revokedRules).toEqual([]);
    expect(evaluateGuards(result, { policy: POLICY, force: false })).toEqual([]);
  });

  it("shrinks the cover by one rule per active grant, so the registry never goes over its limit", () => {
    // Limit 6: two people's rules leave 4 for the four /24s. One grant leaves 3: two /24s merge into a /14.
    const active = grant("192.0.2.7/32", "2026-03-02T00:00:00.000Z");
    const before = plan({ snapshot: snapshot([...PEOPLE], 6), ledger: ledger([]) });
    expect(before.ownedAfter).toEqual(TAG_PREFIXES);
    const result = plan({ snapshot: snapshot([...PEOPLE], 6), ledger: ledger([], [active]) });
    expect(result.counts.budget).toBe(3);
    expect(result.counts.after).toBe(6);
    expect(result.ownedAfter.filter((rule) => rule !== "192.0.2.7/32")).toHaveLength(3);
    expect(result.adds.map((r) => r.rule)).toContain("192.0.2.7/32");
  });

  it("refuses with the figures, grants included, when the grants leave the cover no room", () => {
    const grants = [
      grant("192.0.2.7/32", "2026-03-02T00:00:00.000Z"),
      grant("192.0.2.8/32", "2026-03-02T00:00:00.000Z"),
    ];
    let caught: unknown;
    try {
      plan({ snapshot: snapshot([...PEOPLE], 4), ledger: ledger([], grants) });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CoverInfeasibleError);
    expect((caught as CoverInfeasibleError).message).toContain("active grants 2");
    expect((caught as CoverInfeasibleError).details).toMatchObject({
      limit: 4,
      peopleRules: 2,
      grantRules: 2,
      budget: 0,
    });
    expect((caught as CoverInfeasibleError).remedy).toContain("Revoke a grant");
  });

  it("does not restore an expired grant's rule in a rollback, and keeps an active one", () => {
    const result = planAllowlist({
      snapshot: snapshot([...PEOPLE, "192.0.2.7/32"]),
      ledger: ledger(["192.0.2.7/32"], [grant("192.0.2.7/32", "2026-03-01T13:00:00.000Z")]),
      desired: { kind: "rollback", auditId: "20260301T000000000Z-abcdef", ownedRules: TAG_PREFIXES },
      pinnedRules: [],
      policy: POLICY,
      now: NOW,
    });
    expect(result.ownedAfter).toEqual([...TAG_PREFIXES, "192.0.2.7/32"]);
  });

  it("needs the run clock when the ledger holds grants, and never reads one itself", () => {
    expect(() =>
      planAllowlist({
        snapshot: snapshot([...PEOPLE]),
        ledger: ledger([], [grant("192.0.2.7/32", "2026-03-02T00:00:00.000Z")]),
        desired: desired(),
        pinnedRules: [],
        policy: POLICY,
      }),
    ).toThrow(/run clock/);
  });
});

describe("deciding a grant change", () => {
  const registry = snapshot([...PEOPLE, ...TAG_PREFIXES]);
  const current = plan({ snapshot: registry, ledger: ledger(TAG_PREFIXES) });

  it("records a new grant with the run clock as its start and clock plus ttl as its expiry", () => {
    const decision = decideGrantChange(
      {
        kind: "add",
        rule: "192.0.2.7/32",
        ttlMs: 8 * 3_600_000,
        reason: "laptop pull",
        grantedBy: "cli:bob@h",
        id: "g000000000001",
      },
      current,
      ledger(TAG_PREFIXES),
      REF.id,
      NOW,
    );
    expect(decision.kind).toBe("plan");
    expect(decision.outcome).toEqual({
      kind: "added",
      grant: {
        id: "g000000000001",
        rule: "192.0.2.7/32",
        createdAt: "2026-03-01T12:00:00.000Z",
        expiresAt: "2026-03-01T20:00:00.000Z",
        grantedBy: "cli:bob@h",
        reason: "laptop pull",
      },
    });
  });

  it("stops without a write when a person's rule, the cover or another grant already admits the address", () => {
    const add = (rule: string) =>
      decideGrantChange(
        { kind: "add", rule, ttlMs: 3_600_000, reason: "x y z", grantedBy: "cli:bob@h", id: "g000000000002" },
        current,
        ledger(TAG_PREFIXES),
        REF.id,
        NOW,
      );
    expect(add("198.51.100.9/32")).toMatchObject({
      kind: "stop",
      outcome: { kind: "already-admitted", by: "people", byRule: "198.51.100.0/24" },
    });
    expect(add("20.3.0.128/25")).toMatchObject({
      kind: "stop",
      outcome: { kind: "already-admitted", by: "service", byRule: "20.3.0.0/24" },
    });
    const withGrant = plan({
      snapshot: snapshot([...PEOPLE, ...TAG_PREFIXES, "192.0.2.0/28"]),
      ledger: ledger([...TAG_PREFIXES, "192.0.2.0/28"], [grant("192.0.2.0/28", "2026-03-01T13:00:00.000Z")]),
    });
    expect(
      decideGrantChange(
        { kind: "add", rule: "192.0.2.3/32", ttlMs: 3_600_000, reason: "x y z", grantedBy: "b", id: "g000000000003" },
        withGrant,
        undefined,
        REF.id,
        NOW,
      ),
    ).toMatchObject({ kind: "stop", outcome: { kind: "already-admitted", by: "grant", byRule: "192.0.2.0/28" } });
  });

  it("ends a revoked grant at the run clock, naming who revoked it, and refuses to revoke what is not granted", () => {
    const active = grant("192.0.2.7/32", "2026-03-01T20:00:00.000Z");
    const state = ledger([...TAG_PREFIXES, "192.0.2.7/32"], [active]);
    const withGrant = plan({ snapshot: snapshot([...PEOPLE, ...TAG_PREFIXES, "192.0.2.7/32"]), ledger: state });
    const decision = decideGrantChange(
      { kind: "revoke", rule: "192.0.2.7/32", revokedBy: "cli:carol@h" },
      withGrant,
      state,
      REF.id,
      NOW,
    );
    expect(decision.outcome).toEqual({
      kind: "revoked",
      grant: { ...active, expiresAt: NOW.toISOString(), revokedBy: "cli:carol@h" },
    });
    if (decision.kind !== "plan") throw new Error("expected a plan");
    const after = plan({ snapshot: snapshot([...PEOPLE, ...TAG_PREFIXES, "192.0.2.7/32"]), ledger: decision.ledger });
    expect(after.removes.map((r) => [r.rule, r.reason])).toEqual([
      ["192.0.2.7/32", "grant by cli:alice@laptop revoked by cli:carol@h"],
    ]);
    expect(() =>
      decideGrantChange({ kind: "revoke", rule: "192.0.2.8/32", revokedBy: "c" }, withGrant, state, REF.id, NOW),
    ).toThrow(/No active grant of 192\.0\.2\.8\/32.*/);
  });
});
