import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings.js";
import { ConfigError } from "../../src/errors.js";

const ID =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg";

function configError(env: Record<string, string>): ConfigError {
  try {
    loadSettings({ TARGET_REGISTRIES: ID, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("settings that only make sense in Azure as it is", () => {
  it("refuses WEBSITE_TIME_ZONE: Flex Consumption schedules are UTC", () => {
    const error = configError({ WEBSITE_TIME_ZONE: "Tokyo Standard Time" });
    expect(error.details.setting).toBe("WEBSITE_TIME_ZONE");
    expect(error.message).toMatch(/UTC/);
  });

  it("ignores a blank WEBSITE_TIME_ZONE", () => {
    expect(loadSettings({ TARGET_REGISTRIES: ID, WEBSITE_TIME_ZONE: " " }).schedule).toBe("0 0 3 * * *");
  });

  it("refuses the retired AzureGermany cloud", () => {
    expect(configError({ SERVICE_TAGS_CLOUD: "AzureGermany" }).details.setting).toBe("SERVICE_TAGS_CLOUD");
  });
});
