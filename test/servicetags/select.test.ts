import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { InvalidPrefixError, TagNotFoundError, UsageError } from "../../src/errors.js";
import { formatPrefix } from "../../src/prefixes/ipv4.js";
import { parseServiceTags } from "../../src/servicetags/parse.js";
import type { ServiceTagsFile } from "../../src/servicetags/schema.js";
import { acrTagNameForRegion, availableAcrRegions, selectTags } from "../../src/servicetags/select.js";
import { fixturePath } from "../support/paths.js";

function load(name: string): ServiceTagsFile {
  const path = fixturePath("servicetags", name);
  return parseServiceTags(readFileSync(path, "utf8"), { location: path });
}

const PUBLIC = load("ServiceTags_Public_20251020.acr.json");

function fileWith(values: { name: string; region?: string; prefixes: string[] }[]): ServiceTagsFile {
  return {
    changeNumber: 1,
    cloud: "Public",
    values: values.map(({ name, region = "", prefixes }) => ({
      name,
      id: name,
      properties: {
        changeNumber: 7,
        region,
        platform: "Azure",
        systemService: "AzureContainerRegistry",
        addressPrefixes: prefixes,
      },
    })),
  };
}

function errorOf(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("acrTagNameForRegion", () => {
  it("prefixes the ARM location with the ACR tag name", () => {
    expect(acrTagNameForRegion("eastus")).toBe("AzureContainerRegistry.eastus");
  });

  it("drops the spaces of a display name", () => {
    expect(acrTagNameForRegion("East US 2")).toBe("AzureContainerRegistry.EastUS2");
  });

  it("refuses an empty region", () => {
    expect(() => acrTagNameForRegion("  ")).toThrow(UsageError);
  });
});

describe("selectTags", () => {
  it("selects a region's tag by name, case-insensitively, with its IPv4 prefixes as published", () => {
    const { tags } = selectTags(PUBLIC, { regions: ["eastus"] });
    expect(tags).toHaveLength(1);
    const tag = tags[0];
    expect(tag?.name).toBe("AzureContainerRegistry.EastUS");
    expect(tag?.region).toBe("eastus");
    expect(tag?.ipv4).toHaveLength(13);
    expect(tag?.ipv6Count).toBe(9);
    expect(tag?.ipv4.every((text) => !text.includes(":"))).toBe(true);
    expect(tag?.prefixes.map(formatPrefix)).toEqual(
      tag?.ipv4.map((text) => (text.includes("/") ? text : `${text}/32`)),
    );
  });

  it("matches on the tag name, not on properties.region", () => {
    // properties.region of FranceCentral is 'centralfrance' and of BrazilSoutheast is 'brazilse'.
    const { tags } = selectTags(PUBLIC, { regions: ["francecentral", "BrazilSoutheast"] });
    expect(tags.map((tag) => [tag.name, tag.region])).toEqual([
      ["AzureContainerRegistry.FranceCentral", "centralfrance"],
      ["AzureContainerRegistry.BrazilSoutheast", "brazilse"],
    ]);
    expect(() => selectTags(PUBLIC, { regions: ["centralfrance"] })).toThrow(TagNotFoundError);
  });

  it("selects the global tag by its full name and keeps the per-tag changeNumber", () => {
    const { tags } = selectTags(PUBLIC, { tagNames: ["azurecontainerregistry"] });
    expect(tags[0]?.name).toBe("AzureContainerRegistry");
    expect(tags[0]?.ipv4).toHaveLength(590);
    expect(tags[0]?.ipv6Count).toBe(556);
    expect(tags[0]?.changeNumber).toBeGreaterThan(0);
  });

  it("returns each tag once, regions first, when a selection names it twice", () => {
    const { tags } = selectTags(PUBLIC, {
      regions: ["westeurope", "WestEurope", "eastus"],
      tagNames: ["AzureContainerRegistry.EastUS", "AzureContainerRegistry"],
    });
    expect(tags.map((tag) => tag.name)).toEqual([
      "AzureContainerRegistry.WestEurope",
      "AzureContainerRegistry.EastUS",
      "AzureContainerRegistry",
    ]);
  });

  it("names every missing tag and some regions that exist", () => {
    const error = errorOf(() => selectTags(PUBLIC, { regions: ["eastus", "atlantis", "mars"] }));
    expect(error).toBeInstanceOf(TagNotFoundError);
    const notFound = error as TagNotFoundError;
    expect(notFound.details.missing).toEqual(["AzureContainerRegistry.atlantis", "AzureContainerRegistry.mars"]);
    expect(notFound.describe()).toContain("australiaeast");
    expect(notFound.describe()).not.toContain("\n");
  });

  it("finds the tags of a sovereign cloud file", () => {
    const china = load("ServiceTags_China_20260720.json");
    const { tags } = selectTags(china, { regions: ["chinaeast2", "chinanorth3"] });
    expect(tags.map((tag) => tag.name)).toEqual([
      "AzureContainerRegistry.ChinaEast2",
      "AzureContainerRegistry.ChinaNorth3",
    ]);
    expect(tags.every((tag) => tag.ipv4.length > 0)).toBe(true);
  });

  it("reports regional tags that vanished between publications", () => {
    // Ten regional ACR tags disappeared on 2023-01-30; the 20230102 file still has them.
    const before = availableAcrRegions(load("ServiceTags_Public_20230102.acr.json"));
    const after = availableAcrRegions(PUBLIC);
    expect(before.filter((region) => !after.includes(region)).length).toBeGreaterThan(0);
  });

  it("rejects a published IPv4 prefix with host bits set, naming the tag", () => {
    const file = fileWith([{ name: "AzureContainerRegistry.EastUS", prefixes: ["20.42.66.0/24", "20.42.67.1/24"] }]);
    const error = errorOf(() => selectTags(file, { regions: ["eastus"] }));
    expect(error).toBeInstanceOf(InvalidPrefixError);
    expect((error as InvalidPrefixError).details).toMatchObject({
      tag: "AzureContainerRegistry.EastUS",
      reason: "host-bits",
    });
  });

  it("refuses an empty selection instead of allowing nothing", () => {
    expect(() => selectTags(PUBLIC, {})).toThrow(UsageError);
    expect(() => selectTags(PUBLIC, { regions: [], tagNames: [" "] })).toThrow(UsageError);
  });
});

describe("availableAcrRegions", () => {
  it("lists the lowercase ARM locations that have a regional ACR tag, sorted", () => {
    const regions = availableAcrRegions(PUBLIC);
    expect(regions).toHaveLength(69);
    expect(regions).toContain("eastus");
    expect(regions).toContain("brazilsoutheast");
    expect(regions).not.toContain("");
    expect([...regions].sort()).toEqual(regions);
  });

  it("lists nothing for a file without ACR tags", () => {
    expect(availableAcrRegions(fileWith([{ name: "Storage.EastUS", prefixes: [] }]))).toEqual([]);
  });
});
