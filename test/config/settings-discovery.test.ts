import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings.js";
import { ConfigError } from "../../src/errors.js";

const SUB = "00000000-0000-0000-0000-0000000000d2";
const ID = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg`;

function message(env: Record<string, string>): string {
  try {
    loadSettings(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.describe();
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("discovery and fan-out settings", () => {
  it("keeps discovery and fan-out off by default", () => {
    const settings = loadSettings({ TARGET_REGISTRIES: ID });
    expect(settings.discovery).toEqual({ tag: undefined, scopes: [] });
    expect(settings.fanout).toBe(false);
    expect(settings.maxPerSubscription).toBe(4);
  });

  it("needs no TARGET_REGISTRIES when a discovery tag is set, and reads the scopes", () => {
    const settings = loadSettings({
      TARGET_DISCOVERY_TAG: " acr-allowlist-sync = enabled ",
      TARGET_DISCOVERY_SCOPES: `/subscriptions/${SUB.toUpperCase()}, /providers/Microsoft.Management/managementGroups/platform-mg`,
      SYNC_FANOUT: "true",
    });
    expect(settings.targets).toEqual([]);
    expect(settings.discovery).toEqual({
      tag: { key: "acr-allowlist-sync", value: "enabled" },
      scopes: [
        { kind: "subscription", id: SUB },
        { kind: "managementGroup", id: "platform-mg" },
      ],
    });
    expect(settings.fanout).toBe(true);
  });

  it("still requires TARGET_REGISTRIES without a discovery tag, and says how to do without", () => {
    expect(message({})).toMatch(/TARGET_REGISTRIES.*unless TARGET_DISCOVERY_TAG/);
  });

  it.each(["enabled", "=enabled", "key=", "it's=on", "a/b=c", "k=v,w"])(
    "refuses the discovery tag %j, naming the setting",
    (tag) => {
      expect(message({ TARGET_DISCOVERY_TAG: tag })).toMatch(
        /^Setting TARGET_DISCOVERY_TAG \(--discovery-tag\) is invalid: expected key=value/,
      );
    },
  );

  it.each(["/subscriptions/not-a-guid", "/resourceGroups/rg", "subscription"])(
    "refuses the discovery scope %j, naming the setting",
    (scope) => {
      expect(message({ TARGET_DISCOVERY_TAG: "a=b", TARGET_DISCOVERY_SCOPES: scope })).toMatch(
        /^Setting TARGET_DISCOVERY_SCOPES \(--discovery-scopes\) is invalid: .* is neither \/subscriptions/,
      );
    },
  );

  it("bounds the per-subscription concurrency", () => {
    expect(message({ TARGET_REGISTRIES: ID, SYNC_MAX_PER_SUBSCRIPTION: "0" })).toMatch(/SYNC_MAX_PER_SUBSCRIPTION/);
    expect(loadSettings({ TARGET_REGISTRIES: ID, SYNC_MAX_PER_SUBSCRIPTION: "12" }).maxPerSubscription).toBe(12);
  });
});
