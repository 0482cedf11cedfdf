import { describe, expect, it } from "vitest";
import { planWeekFaults, type FaultPolicy, type PlannedFault } from "./faults.js";
import { seededRandom } from "../support/random.js";

const POLICY: FaultPolicy = { quietShare: 0.15, writeShare: 0.8, writeAttempts: 3 };

function plan(seed: number, weeks: number, writeEvery: number): PlannedFault[][] {
  const random = seededRandom(seed);
  return Array.from({ length: weeks }, (_, i) =>
    planWeekFaults(random, POLICY, {
      fileName: `ServiceTags_Public_2021${String(i).padStart(4, "0")}.json`,
      writeExpected: i % writeEvery === 0,
    }),
  );
}

/** What a plan says, without the fault objects' callbacks. */
function summary(weeks: PlannedFault[][]): string[][] {
  return weeks.map((faults) => faults.map((f) => `${f.kind}:${f.target === "arm" ? f.op : f.where}:${f.times}`));
}

describe("seeded fault plans", () => {
  it("are the same for the same seed and differ for another", () => {
    expect(summary(plan(7, 200, 10))).toEqual(summary(plan(7, 200, 10)));
    expect(summary(plan(8, 200, 10))).not.toEqual(summary(plan(7, 200, 10)));
  });

  it("fault about the configured share of quiet weeks, and most weeks that write", () => {
    const weeks = plan(1, 2000, 20);
    const quiet = weeks.filter((_, i) => i % 20 !== 0);
    const writing = weeks.filter((_, i) => i % 20 === 0);
    const share = quiet.filter((faults) => faults.length > 0).length / quiet.length;
    expect(share).toBeGreaterThan(0.12);
    expect(share).toBeLessThan(0.18);
    expect(writing.filter((faults) => faults.length > 0).length / writing.length).toBeGreaterThan(0.9);
  });

  it("put only read and source faults into weeks without a write, and a write-path fault into the first slot of weeks with one", () => {
    const weeks = plan(3, 2000, 20);
    for (const [i, faults] of weeks.entries()) {
      if (i % 20 !== 0) {
        for (const fault of faults) if (fault.target === "arm") expect(["get", "usages"]).toContain(fault.op);
      } else if (faults.length === POLICY.writeAttempts) {
        // Every slot drew a fault, so the first is the write-path slot's.
        expect(faults[0]?.target === "arm" && faults[0].op).toMatch(/^(patch|poll)$/);
      }
    }
    const kinds = new Set(weeks.flat().map((fault) => fault.kind));
    expect([...kinds].sort()).toEqual([
      "arm-429",
      "arm-500",
      "arm-500-after-write",
      "arm-503",
      "arm-hang",
      "arm-lro-failed",
      "arm-lro-stuck",
      "arm-reset",
      "source-403",
      "source-500",
      "source-html",
      "source-reset",
      "source-truncated",
    ]);
  });
});
