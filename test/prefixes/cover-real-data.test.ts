import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CoverInfeasibleError } from "../../src/errors.js";
import { minimumBudget, optimalCover } from "../../src/prefixes/cover.js";
import type { Prefix } from "../../src/prefixes/ipv4.js";
import { mergePrefixes } from "../../src/prefixes/merge.js";
import { parseServiceTags } from "../../src/servicetags/parse.js";
import type { ServiceTagsFile } from "../../src/servicetags/schema.js";
import { availableAcrRegions, selectTags } from "../../src/servicetags/select.js";
import { fixturePath } from "../support/paths.js";
import { referenceOptimum, shapeProblems, uncoveredAddresses, unionSize } from "./oracles.js";

const FILES = [
  "ServiceTags_Public_20251020.acr.json",
  "ServiceTags_Public_20230102.acr.json",
  "ServiceTags_China_20260720.json",
];

function load(name: string): ServiceTagsFile {
  const path = fixturePath("servicetags", name);
  return parseServiceTags(readFileSync(path, "utf8"), { location: path });
}

function targetsOf(file: ServiceTagsFile, selector: { regions?: string[]; tagNames?: string[] }): Prefix[] {
  return selectTags(file, selector).tags.flatMap((tag) => tag.prefixes);
}

/** Runs the cover and checks it against the definition and the reference optimum. */
function expectOptimal(targets: readonly Prefix[], maxPrefixes: number, minLength: number): void {
  const merged = mergePrefixes(targets);
  if (minimumBudget(merged, minLength) > maxPrefixes) {
    expect(() => optimalCover(targets, { maxPrefixes, minPrefixLength: minLength })).toThrow(CoverInfeasibleError);
    return;
  }
  const cover = optimalCover(targets, { maxPrefixes, minPrefixLength: minLength });
  expect(shapeProblems(cover.prefixes, minLength)).toEqual([]);
  expect(cover.prefixes.length).toBeLessThanOrEqual(maxPrefixes);
  expect(uncoveredAddresses(targets, cover.prefixes)).toBe(0);
  expect(cover.extraAddresses).toBe(unionSize(cover.prefixes) - unionSize(targets));
  expect(cover.extraAddresses).toBe(referenceOptimum(merged, maxPrefixes, minLength));
}

const US9 = [
  "eastus",
  "eastus2",
  "centralus",
  "southcentralus",
  "westus",
  "westus2",
  "westus3",
  "northcentralus",
  "westcentralus",
];

describe("optimal cover of real service tags", () => {
  for (const name of FILES) {
    it(`is optimal for every regional ACR tag of ${name}, at every budget, with and without a /24 floor`, () => {
      const file = load(name);
      const regions = availableAcrRegions(file);
      expect(regions.length).toBeGreaterThan(5);
      for (const region of regions) {
        const targets = targetsOf(file, { regions: [region] });
        expect(targets.length).toBeGreaterThan(0);
        const merged = mergePrefixes(targets).length;
        for (let k = 1; k <= merged; k += 1) {
          expectOptimal(targets, k, 0);
          expectOptimal(targets, k, 24);
        }
        // At the merged count the cover is the exact merge.
        expect(optimalCover(targets, { maxPrefixes: merged }).extraAddresses).toBe(0);
      }
    });
  }

  it("needs 102 rules for the 9 large US regions exactly, and is optimal below that", () => {
    const targets = targetsOf(load(FILES[0] as string), { regions: US9 });
    expect(mergePrefixes(targets)).toHaveLength(102);
    for (const k of [101, 100, 90, 50, 20, 5, 1]) expectOptimal(targets, k, 0);
    expectOptimal(targets, 100, 16);
  });

  it("is optimal for the global AzureContainerRegistry tag at 100 rules, with and without a /16 floor", () => {
    const targets = targetsOf(load(FILES[0] as string), { tagNames: ["AzureContainerRegistry"] });
    expect(targets.length).toBeGreaterThan(500);
    expectOptimal(targets, 100, 0);
    expectOptimal(targets, 100, 16);
    expectOptimal(targets, 300, 0);
  });

  it("is optimal for unions of regions across clouds and years", () => {
    expectOptimal(
      targetsOf(load(FILES[1] as string), {
        regions: [
          "westeurope",
          "northeurope",
          "uksouth",
          "francecentral",
          "germanywestcentral",
          "swedencentral",
          "switzerlandnorth",
          "norwayeast",
        ],
      }),
      40,
      0,
    );
    expectOptimal(
      targetsOf(load(FILES[0] as string), { regions: availableAcrRegions(load(FILES[0] as string)) }),
      100,
      0,
    );
    expectOptimal(
      targetsOf(load(FILES[2] as string), { regions: availableAcrRegions(load(FILES[2] as string)) }),
      10,
      0,
    );
  });
});
