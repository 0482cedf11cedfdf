import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings.js";
import { ConfigError } from "../../src/errors.js";

const PROD =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/prodreg";
const CANARY =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/canaryjpe";

describe("the canary settings", () => {
  it("runs no canary unless asked, with the documented defaults", () => {
    const settings = loadSettings({ TARGET_REGISTRIES: PROD });
    expect(settings.targets.map((target) => target.canary)).toEqual([undefined]);
    expect(settings.canary).toEqual({
      schedule: "0 30 */6 * * *",
      propagationDelayMs: 180_000,
      deadlineMs: 240_000,
      pollIntervalMs: 5_000,
    });
  });

  it("syncs a dedicated canary registry like a target, after the targets, and marks it", () => {
    const settings = loadSettings({ TARGET_REGISTRIES: PROD, CANARY_REGISTRIES: CANARY, SYNC_HEADROOM: "7" });
    expect(settings.targets.map((target) => [target.ref.name, target.canary, target.policy.headroom])).toEqual([
      ["prodreg", undefined, 7],
      ["canaryjpe", "dedicated", 7],
    ]);
  });

  it("does not list a registry twice when it is both a target and a dedicated canary", () => {
    const settings = loadSettings({ TARGET_REGISTRIES: `${PROD},${CANARY}`, CANARY_REGISTRIES: CANARY.toUpperCase() });
    expect(settings.targets.map((target) => [target.ref.name, target.canary])).toEqual([
      ["prodreg", undefined],
      ["canaryjpe", "dedicated"],
    ]);
  });

  it("runs the canary on a target itself only when CANARY_ON_TARGETS names it", () => {
    const settings = loadSettings({ TARGET_REGISTRIES: `${PROD},${CANARY}`, CANARY_ON_TARGETS: PROD });
    expect(settings.targets.map((target) => target.canary)).toEqual(["target", undefined]);
  });

  it("refuses an opted-in registry that is not a target, naming the setting", () => {
    expect(() => loadSettings({ TARGET_REGISTRIES: PROD, CANARY_ON_TARGETS: CANARY })).toThrow(ConfigError);
    expect(() => loadSettings({ TARGET_REGISTRIES: PROD, CANARY_ON_TARGETS: CANARY })).toThrow(
      `Setting CANARY_ON_TARGETS is invalid: registry ${CANARY} is not in TARGET_REGISTRIES.`,
    );
  });

  it("refuses a canary registry that is not a resource ID, and a propagation delay beyond ten minutes", () => {
    expect(() => loadSettings({ TARGET_REGISTRIES: PROD, CANARY_REGISTRIES: "canaryjpe" })).toThrow(
      "CANARY_REGISTRIES 'canaryjpe' is not a container registry resource ID.",
    );
    expect(() => loadSettings({ TARGET_REGISTRIES: PROD, CANARY_PROPAGATION_DELAY_MS: "700000" })).toThrow(
      /CANARY_PROPAGATION_DELAY_MS/,
    );
  });
});
