import { describe, expect, it } from "vitest";
import { grantAddedRecord, grantExpiredRecord, grantOverdueRecord } from "../../src/telemetry/records.js";

const BASE = {
  registry: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg",
  rule: "192.0.2.7/32",
  grantId: "g0123456789ab",
  grantedBy: "cli:alice@laptop",
  reason: "docker pull during incident 4711",
  expiresAt: "2026-03-02T17:00:00.000Z",
  trigger: "cli",
};

describe("grant telemetry records", () => {
  it("carry registry, rule, who, why and the expiry on every grant event", () => {
    const added = grantAddedRecord({ ...BASE, createdAt: "2026-03-02T09:00:00.000Z" });
    expect(added).toEqual({
      name: "AllowlistGrantAdded",
      severity: "info",
      properties: { ...BASE, createdAt: "2026-03-02T09:00:00.000Z" },
    });
    const expired = grantExpiredRecord({ ...BASE, endedAt: "2026-03-03T03:00:00.000Z", revokedBy: "" });
    expect(expired.name).toBe("AllowlistGrantExpired");
    expect(expired.properties).toEqual({ ...BASE, endedAt: "2026-03-03T03:00:00.000Z", revokedBy: "" });
    const overdue = grantOverdueRecord({ ...BASE, overdueMinutes: 1500 });
    expect(overdue).toMatchObject({ name: "AllowlistGrantOverdue", severity: "warn" });
    expect(overdue.properties.overdueMinutes).toBe(1500);
  });

  it("scrub a secret someone pasted into the reason", () => {
    const record = grantAddedRecord({
      ...BASE,
      reason: "pull with AccountKey=c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0;EndpointSuffix=core.windows.net",
      createdAt: "2026-03-02T09:00:00.000Z",
    });
    expect(String(record.properties.reason)).not.toContain("c2VjcmV0c2VjcmV0");
  });
});
