import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings.js";
import { overridesFromTags } from "../../src/discovery/tags.js";
import { resolveTargets } from "../../src/discovery/targets.js";
import { discoveryQuery, parseResetsAfter, scopeRequests } from "../../src/discovery/query.js";
import { InvalidRegistryTagError } from "../../src/errors.js";
import type { DiscoveredRegistry } from "../../src/discovery/types.js";

const SUB = "00000000-0000-0000-0000-0000000000d1";
const id = (name: string, sub = SUB) =>
  `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/${name}`;
const row = (name: string, tags: Record<string, string> = {}, sku = "Premium"): DiscoveredRegistry => ({
  id: id(name),
  name,
  location: "eastus",
  sku,
  subscriptionId: SUB,
  resourceGroup: "rg",
  tags: { "acr-allowlist-sync": "enabled", ...tags },
});

function tagError(tags: Record<string, string>): InvalidRegistryTagError {
  try {
    overridesFromTags(id("reg01"), tags, 16);
  } catch (error) {
    if (error instanceof InvalidRegistryTagError) return error;
    throw error;
  }
  throw new Error("expected InvalidRegistryTagError");
}

describe("per-registry override tags", () => {
  it("reads regions, headroom, include-replicas and pinned rules, tag names in any case", () => {
    expect(
      overridesFromTags(
        id("reg01"),
        {
          "ACR-Allowlist-Sync.Regions": "EastUS, westus",
          "acr-allowlist-sync.headroom": "10",
          "acr-allowlist-sync.include-replicas": "Yes",
          "acr-allowlist-sync.pinned-rules": "203.0.113.10 198.51.100.0/24",
          "acr-allowlist-sync": "enabled",
          owner: "platform-team",
        },
        16,
      ),
    ).toEqual({
      regions: ["EastUS", "westus"],
      headroom: 10,
      includeReplicas: true,
      pinnedRules: ["203.0.113.10", "198.51.100.0/24"],
    });
  });

  it.each([
    [
      { "acr-allowlist-sync.headroom": "lots" },
      /acr-allowlist-sync\.headroom='lots'.*example: acr-allowlist-sync\.headroom=10/,
    ],
    [{ "acr-allowlist-sync.headroom": "5000" }, /headroom='5000'/],
    [{ "acr-allowlist-sync.regions": "east us!" }, /regions='east us!'.*ARM location/],
    [{ "acr-allowlist-sync.regions": " , " }, /regions=' , '/],
    [{ "acr-allowlist-sync.include-replicas": "maybe" }, /include-replicas='maybe'/],
    [{ "acr-allowlist-sync.pinned-rules": "2001:db8::/32" }, /pinned-rules='2001:db8::\/32'.*IPv4/],
    [
      { "acr-allowlist-sync.pinned-rules": "0.0.0.0/0" },
      /pinned-rules='0\.0\.0\.0\/0'.*wider than SYNC_MIN_PREFIX_LENGTH \/16/,
    ],
    [
      { "acr-allowlist-sync.pinned-rules": "203.0.113.10/24" },
      /pinned-rules='203\.0\.113\.10\/24'.*not a valid IPv4 rule/,
    ],
    [{ "acr-allowlist-sync.pinned-rules": "300.1.1.1" }, /pinned-rules='300\.1\.1\.1'.*not a valid IPv4 rule/],
    [{ "acr-allowlist-sync.headrom": "5" }, /headrom='5'.*not a known tag/],
  ])("refuses %j with a message naming the tag, its value and an example", (tags, message) => {
    const error = tagError(tags);
    expect(error.code).toBe("InvalidRegistryTag");
    expect(error.describe()).toMatch(message);
    expect(error.details.registry).toBe(id("reg01"));
  });
});

describe("merging discovered registries into the targets", () => {
  const settings = loadSettings({
    TARGET_REGISTRIES: JSON.stringify([{ id: id("explicit01"), headroom: 20 }]),
    TARGET_DISCOVERY_TAG: "acr-allowlist-sync=enabled",
    SYNC_HEADROOM: "7",
  });

  it("keeps explicit settings over tags, skips only the registry with a bad tag and the non-Premium one", () => {
    const resolved = resolveTargets(
      settings.targets,
      [
        row("explicit01", { "acr-allowlist-sync.headroom": "1" }),
        row("tagged01", { "acr-allowlist-sync.headroom": "3" }),
        row("badtag01", { "acr-allowlist-sync.headroom": "-1" }),
        row("basic01", {}, "Basic"),
        row("plain01"),
      ],
      settings.targetDefaults,
      undefined,
    );
    expect(resolved.targets.map((t) => [t.ref.name, t.policy.headroom])).toEqual([
      ["explicit01", 20],
      ["tagged01", 3],
      ["plain01", 7],
    ]);
    expect(resolved.skipped.map((s) => [s.registryId.split("/").pop(), s.error.code])).toEqual([
      ["badtag01", "InvalidRegistryTag"],
      ["basic01", "NetworkRuleNotSupported"],
    ]);
    expect(resolved.remember).toHaveLength(5);
  });

  it("reports a registry that lost the tag once: it is not remembered for the next run", () => {
    const first = resolveTargets(
      settings.targets,
      [row("tagged01"), row("gone01")],
      settings.targetDefaults,
      undefined,
    );
    expect(first.untagged).toEqual([]);
    const second = resolveTargets(settings.targets, [row("tagged01")], settings.targetDefaults, first.remember);
    expect(second.untagged).toEqual([id("gone01")]);
    expect(second.targets.map((t) => t.ref.name)).toEqual(["explicit01", "tagged01"]);
    const third = resolveTargets(settings.targets, [row("tagged01")], settings.targetDefaults, second.remember);
    expect(third.untagged).toEqual([]);
  });

  it("does not report an explicit registry as lost when its tag goes", () => {
    const first = resolveTargets(settings.targets, [row("explicit01")], settings.targetDefaults, undefined);
    expect(resolveTargets(settings.targets, [], settings.targetDefaults, first.remember).untagged).toEqual([]);
  });
});

describe("the Resource Graph request", () => {
  it("compares the tag name and value case-insensitively and projects id for paging", () => {
    const query = discoveryQuery({ key: "acr-allowlist-sync", value: "enabled" });
    expect(query).toContain("tostring(tag[0]) =~ 'acr-allowlist-sync' and tostring(tag[1]) =~ 'enabled'");
    expect(query).toMatch(/\| project id, /);
  });

  it("sends subscriptions and management groups in separate requests, and no scope for the whole tenant", () => {
    expect(scopeRequests([])).toEqual([{}]);
    expect(
      scopeRequests([
        { kind: "subscription", id: SUB },
        { kind: "managementGroup", id: "platform" },
        { kind: "subscription", id: SUB },
      ]),
    ).toEqual([{ subscriptions: [SUB] }, { managementGroups: ["platform"] }]);
  });

  it("reads the quota reset time as hh:mm:ss", () => {
    expect(parseResetsAfter("00:00:03")).toBe(3000);
    expect(parseResetsAfter("01:02:03")).toBe(3_723_000);
    expect(parseResetsAfter("soon")).toBeUndefined();
    expect(parseResetsAfter(undefined)).toBeUndefined();
  });
});
