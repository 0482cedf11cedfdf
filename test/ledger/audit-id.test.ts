import { describe, expect, it } from "vitest";
import { auditIdTime, createAuditId, isAuditId } from "../../src/ledger/audit-id.js";

describe("audit ids", () => {
  it("spell the UTC instant to the millisecond, then six hex digits", () => {
    expect(createAuditId(new Date("2025-10-20T03:15:00.123Z"), () => "a1b2c3")).toBe("20251020T031500123Z-a1b2c3");
  });

  it("sort as strings in the order of their instants", () => {
    const instants = [
      "2025-10-20T03:15:00.123Z",
      "2024-01-01T00:00:00.000Z",
      "2025-10-20T03:15:00.124Z",
      "2025-09-30T23:59:59.999Z",
    ];
    const ids = instants.map((at) => createAuditId(new Date(at)));
    expect([...ids].sort().map((id) => auditIdTime(id)?.toISOString())).toEqual([...instants].sort());
  });

  it("differ within one millisecond", () => {
    const at = new Date("2025-10-20T03:15:00.123Z");
    const ids = new Set(Array.from({ length: 50 }, () => createAuditId(at)));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(isAuditId(id)).toBe(true);
  });

  it("round-trip to their instant, and other strings have none", () => {
    expect(auditIdTime("20251020T031500123Z-a1b2c3")?.toISOString()).toBe("2025-10-20T03:15:00.123Z");
    expect(auditIdTime("2025-10-20T03:15:00.123Z")).toBeUndefined();
    expect(isAuditId("20251020T031500123Z-A1B2C3")).toBe(false);
  });

  it("refuse a suffix that is not six lower-case hex digits", () => {
    expect(() => createAuditId(new Date(), () => "xyz")).toThrow(RangeError);
  });
});
