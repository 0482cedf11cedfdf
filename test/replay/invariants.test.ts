import { describe, expect, it } from "vitest";
import type { LedgerState } from "../../src/ledger/types.js";
import { checkFailedAttempt, checkWeek, type WeekState } from "./invariants.js";

const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];
const OURS = ["20.41.66.0/26", "20.41.69.0/25"];

function ledger(owned: readonly string[], pending: readonly string[] = []): LedgerState {
  return {
    schemaVersion: 1,
    registryId: "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/replay1",
    ownedRules: [...owned],
    pendingRules: [...pending],
    appliedTagChangeNumbers: {},
    updatedAt: "2025-01-01T00:00:00.000Z",
    lastAuditId: undefined,
  };
}

/** A week in which everything holds: both selected prefixes covered, ledger in step. */
function week(changes: Partial<WeekState> = {}): WeekState {
  return {
    label: "w",
    selected: ["20.41.66.0/26", "20.41.69.0/26"],
    converged: true,
    rulesBefore: [...PEOPLE],
    rulesAfter: [...PEOPLE, ...OURS],
    ruleLimit: 100,
    peopleRules: PEOPLE,
    patches: 1,
    writes: 1,
    selectionUnchanged: false,
    ledger: ledger(OURS),
    ...changes,
  };
}

describe("the weekly invariant checker", () => {
  it("accepts a week in which every invariant holds, also with /32 spelt differently in ledger and registry", () => {
    expect(checkWeek(week())).toEqual([]);
    expect(
      checkWeek(week({ rulesAfter: [...PEOPLE, ...OURS, "40.1.2.3"], ledger: ledger([...OURS, "40.1.2.3/32"]) })),
    ).toEqual([]);
  });

  it("flags a selected prefix that no rule covers", () => {
    expect(checkWeek(week({ selected: ["20.41.66.0/26", "20.41.70.0/26"] }))).toEqual([
      expect.stringMatching(/20\.41\.70\.0\/26 is not covered/),
    ]);
  });

  it("flags a person's rule that is gone or rewritten, even canonically equal", () => {
    const rewritten = ["203.0.113.10/32", "198.51.100.0/24", ...OURS];
    const violations = checkWeek(week({ rulesAfter: rewritten, ledger: ledger([...OURS, "203.0.113.10/32"]) }));
    expect(violations).toContainEqual(expect.stringMatching(/person's rule '203\.0\.113\.10' is gone or changed/));
  });

  it("flags more rules than the limit", () => {
    expect(checkWeek(week({ ruleLimit: 3 }))).toEqual([expect.stringMatching(/4 rules exceed the limit of 3/)]);
  });

  it("flags a PATCH in a week whose selection did not change, and two writes in one week", () => {
    expect(checkWeek(week({ selectionUnchanged: true }))).toEqual([
      expect.stringMatching(/did not change, yet 1 PATCH/),
    ]);
    expect(checkWeek(week({ writes: 2 }))).toEqual([expect.stringMatching(/2 writes in one week/)]);
  });

  it("flags a ledger that differs from the registry's rules minus people's, or keeps pending rules", () => {
    expect(checkWeek(week({ ledger: ledger([OURS[0] ?? ""]) }))).toEqual([
      expect.stringMatching(/not in ledger: 20\.41\.69\.0\/25/),
    ]);
    expect(checkWeek(week({ ledger: ledger([...OURS, "20.0.0.0/8"]) }))).toEqual([
      expect.stringMatching(/not on registry: 20\.0\.0\.0\/8/),
    ]);
    expect(checkWeek(week({ ledger: ledger(OURS, ["20.41.69.0/25"]) }))).toEqual([
      expect.stringMatching(/1 pending rule/),
    ]);
    expect(checkWeek(week({ ledger: undefined }))).toEqual([
      expect.stringMatching(/no ledger, yet the registry holds 2 rule/),
    ]);
  });

  it("flags a registry that changed in a week that tripped a guard", () => {
    expect(checkWeek(week({ converged: false, selected: undefined, rulesBefore: [...PEOPLE, ...OURS] }))).toEqual([]);
    expect(checkWeek(week({ converged: false, selected: undefined }))).toEqual([
      expect.stringMatching(/yet the registry's rules changed/),
    ]);
    expect(checkWeek(week({ selected: undefined, rulesBefore: [...PEOPLE, ...OURS] }))).toEqual([
      expect.stringMatching(/succeeded although a selected tag is missing/),
    ]);
  });
});

describe("the checker of a faulty run", () => {
  const base = {
    label: "w",
    peopleRules: PEOPLE,
    ruleLimit: 100,
    before: [...PEOPLE],
    afterCleanRun: [...PEOPLE, ...OURS],
  };

  it("accepts a registry left as it was or exactly as the next clean run leaves it", () => {
    expect(checkFailedAttempt({ ...base, afterAttempt: [...PEOPLE] })).toEqual([]);
    expect(checkFailedAttempt({ ...base, afterAttempt: [...PEOPLE, ...OURS] })).toEqual([]);
  });

  it("flags a half-written registry and a lost person's rule", () => {
    expect(checkFailedAttempt({ ...base, afterAttempt: [...PEOPLE, OURS[0] ?? ""] })).toEqual([
      expect.stringMatching(/partial write/),
    ]);
    expect(checkFailedAttempt({ ...base, afterAttempt: ["198.51.100.0/24"] })).toContainEqual(
      expect.stringMatching(/'203\.0\.113\.10' is gone/),
    );
  });
});
