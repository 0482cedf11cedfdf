import { describe, expect, it } from "vitest";
import { APP_SETTINGS, loadSettings } from "../../src/config/settings.js";
import { ConfigError } from "../../src/errors.js";

const ID =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg";
const OTHER =
  "/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/rg2/providers/Microsoft.ContainerRegistry/registries/otherreg";

function configError(env: Record<string, string>): ConfigError {
  try {
    loadSettings(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("loadSettings", () => {
  it("applies the documented defaults", () => {
    const settings = loadSettings({ TARGET_REGISTRIES: ID });
    expect(settings.cloud).toBe("Public");
    expect(settings.armEndpoint).toBe("https://management.azure.com");
    expect(settings.schedule).toBe("0 0 3 * * *");
    expect(settings.ledgerContainer).toBe("acr-allowlist-sync");
    expect(settings.targets[0]).toMatchObject({
      regions: undefined,
      includeReplicas: false,
      pinnedRules: [],
      policy: { headroom: 5, minPrefixLength: 16, maxRemovalShare: 0.25, writeWhenDefaultAllow: false },
    });
    for (const info of APP_SETTINGS.filter((s) => s.default !== undefined))
      expect(info.default, info.name).not.toBe("");
  });

  it("reads comma-separated resource IDs and lower-cases regions", () => {
    const settings = loadSettings({ TARGET_REGISTRIES: `${ID}, ${OTHER}`, SYNC_REGIONS: "EastUS,westeurope" });
    expect(settings.targets.map((t) => t.ref.name)).toEqual(["myreg", "otherreg"]);
    expect(settings.targets[1]?.regions).toEqual(["eastus", "westeurope"]);
  });

  it("takes per-registry overrides from the JSON form", () => {
    const settings = loadSettings({
      TARGET_REGISTRIES: JSON.stringify([
        { id: ID, regions: ["eastus"], headroom: 10, pinnedRules: ["203.0.113.10"] },
        OTHER,
      ]),
      SYNC_HEADROOM: "3",
    });
    expect(settings.targets[0]).toMatchObject({
      regions: ["eastus"],
      pinnedRules: ["203.0.113.10"],
      policy: { headroom: 10 },
    });
    expect(settings.targets[1]?.policy.headroom).toBe(3);
  });

  it("picks the sovereign ARM endpoint from the cloud unless ARM_ENDPOINT is set", () => {
    expect(loadSettings({ TARGET_REGISTRIES: ID, SERVICE_TAGS_CLOUD: "China" }).armEndpoint).toBe(
      "https://management.chinacloudapi.cn",
    );
    expect(loadSettings({ TARGET_REGISTRIES: ID, ARM_ENDPOINT: "https://127.0.0.1:8443/" }).armEndpoint).toBe(
      "https://127.0.0.1:8443",
    );
  });

  it.each([
    [{ TARGET_REGISTRIES: "" }, "TARGET_REGISTRIES"],
    [{ TARGET_REGISTRIES: "/subscriptions/x/registries/y" }, "TARGET_REGISTRIES"],
    [
      { TARGET_REGISTRIES: `${ID},${ID.toUpperCase().replace("/SUBSCRIPTIONS", "/subscriptions")}` },
      "TARGET_REGISTRIES",
    ],
    [{ TARGET_REGISTRIES: `[{"id":"${ID}","unknown":1}]` }, "TARGET_REGISTRIES"],
    [{ TARGET_REGISTRIES: "[not json" }, "TARGET_REGISTRIES"],
    [{ TARGET_REGISTRIES: ID, SYNC_HEADROOM: "many" }, "SYNC_HEADROOM"],
    [{ TARGET_REGISTRIES: ID, SYNC_MIN_PREFIX_LENGTH: "33" }, "SYNC_MIN_PREFIX_LENGTH"],
    [{ TARGET_REGISTRIES: ID, SYNC_MAX_REMOVAL_SHARE: "1.5" }, "SYNC_MAX_REMOVAL_SHARE"],
    [{ TARGET_REGISTRIES: ID, SYNC_INCLUDE_REPLICAS: "maybe" }, "SYNC_INCLUDE_REPLICAS"],
    [{ TARGET_REGISTRIES: ID, SYNC_PINNED_RULES: "2001:db8::/32" }, "SYNC_PINNED_RULES"],
    [{ TARGET_REGISTRIES: ID, SERVICE_TAGS_CLOUD: "Mars" }, "SERVICE_TAGS_CLOUD"],
    [{ TARGET_REGISTRIES: ID, ARM_ENDPOINT: "http://management.azure.com" }, "ARM_ENDPOINT"],
    [{ TARGET_REGISTRIES: ID, SYNC_SCHEDULE: "0 3 * * *" }, "SYNC_SCHEDULE"],
    [{ TARGET_REGISTRIES: ID, LEDGER_CONTAINER: "Bad_Name" }, "LEDGER_CONTAINER"],
  ])("fails with a message that names the setting for %j", (env, setting) => {
    const error = configError(env);
    expect(error.details.setting).toBe(setting);
    expect(error.message).toContain(setting);
    expect(error.remedy).toBeDefined();
  });

  it("accepts an https URL or a readable file as SERVICE_TAGS_URL and names the setting otherwise", () => {
    const file = new URL("../fixtures/servicetags/ServiceTags_Public_20251020.acr.json", import.meta.url);
    expect(
      loadSettings({ TARGET_REGISTRIES: ID, SERVICE_TAGS_URL: "https://example.com/t.json" }).serviceTags.url,
    ).toBe("https://example.com/t.json");
    expect(loadSettings({ TARGET_REGISTRIES: ID, SERVICE_TAGS_URL: file.toString() }).serviceTags.url).toBe(
      file.toString(),
    );
    for (const [value, problem] of [
      ["http://example.com/t.json", /neither an https URL nor a local file/],
      ["/no/such/ServiceTags.json", /does not exist/],
      [new URL("../fixtures/servicetags/", import.meta.url).toString(), /not a regular file/],
    ] as const) {
      const error = configError({ TARGET_REGISTRIES: ID, SERVICE_TAGS_URL: value });
      expect(error.message).toContain("SERVICE_TAGS_URL (--service-tags)");
      expect(error.message).toMatch(problem);
      expect(error.details.setting).toBe("SERVICE_TAGS_URL");
    }
  });

  it("never echoes a connection string in its error", () => {
    const error = configError({
      TARGET_REGISTRIES: ID,
      AzureWebJobsStorage__blobServiceUri: "not a url AccountKey=c2VjcmV0",
    });
    expect(JSON.stringify(error.toJSON())).not.toContain("c2VjcmV0");
  });
});
