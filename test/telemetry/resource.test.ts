import { describe, expect, it } from "vitest";
import { cloudRoleName, DEFAULT_CLOUD_ROLE_NAME, telemetryResource } from "../../src/telemetry/resource.js";

describe("telemetry resource", () => {
  it("uses the configured role name before the platform's site name", () => {
    expect(cloudRoleName({ cloudRoleName: "  custom-role " }, { WEBSITE_SITE_NAME: "func-acrsync-prod" })).toBe(
      "custom-role",
    );
  });

  it("names the role after the Functions app when none is configured", () => {
    expect(cloudRoleName({}, { WEBSITE_SITE_NAME: "func-acrsync-prod" })).toBe("func-acrsync-prod");
    expect(cloudRoleName({ cloudRoleName: " " }, { WEBSITE_SITE_NAME: "func-acrsync-prod" })).toBe("func-acrsync-prod");
  });

  it("falls back to the service's name outside Azure", () => {
    expect(cloudRoleName({}, {})).toBe(DEFAULT_CLOUD_ROLE_NAME);
    expect(cloudRoleName({}, { WEBSITE_SITE_NAME: "" })).toBe("acr-allowlist-sync");
  });

  it("puts the role name into service.name, which the exporter maps to cloud_RoleName", () => {
    const resource = telemetryResource({ cloudRoleName: "r1" }, {});
    expect(resource.attributes["service.name"]).toBe("r1");
    expect(resource.attributes["telemetry.sdk.language"]).toBe("nodejs");
  });
});
