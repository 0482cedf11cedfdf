import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseServiceTags } from "../../src/servicetags/parse.js";
import { availableAcrRegions } from "../../src/servicetags/select.js";
import { fixturePath } from "../support/paths.js";
import {
  comparePrefixText,
  loadAcrHistory,
  publicationText,
  rebuildPublications,
  regionalIpv4,
  type AcrHistory,
} from "./history.js";

const history = loadAcrHistory();
const publications = rebuildPublications(history);
const byLabel = (label: string) => publications.filter((p) => p.label === label).at(-1);

/** A real `.acr.json` fixture, without the two fields the deltas do not keep. */
function realAcrTags(label: string): unknown {
  const text = readFileSync(fixturePath("servicetags", `ServiceTags_Public_${label}.acr.json`), "utf8");
  const file = JSON.parse(text) as {
    changeNumber: number;
    cloud: string;
    values: { name: string; id: string; properties: Record<string, unknown> }[];
  };
  return {
    changeNumber: file.changeNumber,
    cloud: file.cloud,
    values: file.values.map(({ name, id, properties }) => {
      const { regionId: _regionId, networkFeatures: _networkFeatures, ...kept } = properties;
      return { name, id, properties: kept };
    }),
  };
}

describe("the rebuilt weekly publications", () => {
  it("are all 242 publications from January 2021 to October 2025, in date order", () => {
    expect(publications).toHaveLength(242);
    expect(publications[0]?.label).toBe("20210104");
    expect(publications.at(-1)?.label).toBe("20251028");
    const labels = publications.map((p) => p.label);
    expect([...labels].sort()).toEqual(labels);
    // Microsoft replaced four files under the same name: the replay publishes them twice.
    expect(labels.length - new Set(labels).size).toBe(4);
  });

  it.each(["20210104", "20211004", "20230102", "20240401", "20251013", "20251020"])(
    "equal the ACR tags of the real file of %s, prefixes in file order",
    (label) => {
      const rebuilt = byLabel(label);
      expect(rebuilt).toBeDefined();
      expect(JSON.parse(publicationText(rebuilt as NonNullable<typeof rebuilt>))).toEqual(realAcrTags(label));
    },
  );

  it("pass the service's own parser, each with its ACR tags", () => {
    for (const publication of publications) {
      const file = parseServiceTags(publicationText(publication), {
        location: publication.fileName,
        expectedCloud: "Public",
      });
      expect(file.changeNumber).toBe(publication.file.changeNumber);
      expect(availableAcrRegions(file).length).toBeGreaterThan(40);
    }
  });

  it("show the tags that vanished on 2023-01-30 and for good on 2024-01-15", () => {
    const before = byLabel("20230123");
    const after = byLabel("20230130");
    if (before === undefined || after === undefined) throw new Error("history lacks January 2023");
    expect(regionalIpv4(before.file, "polandcentral")?.length).toBeGreaterThan(0);
    expect(regionalIpv4(after.file, "polandcentral")).toBeUndefined();
    const last = publications.at(-1);
    expect(last === undefined ? "missing" : regionalIpv4(last.file, "uknorth")).toBeUndefined();
  });

  it("refuse a delta that does not fit the state it applies to, naming the publication", () => {
    const damaged: AcrHistory = structuredClone(history);
    const second = damaged.versions[1];
    if (second === undefined) throw new Error("history too short");
    second.changes = {
      "AzureContainerRegistry.JapanEast": { changeNumber: [4, 5], added: [], removed: ["192.0.2.0/24"] },
    };
    expect(() => rebuildPublications(damaged)).toThrow(/20210111.*JapanEast loses 192\.0\.2\.0\/24/);
  });
});

describe("prefix order of the service-tags file", () => {
  it("puts IPv4 before IPv6 and compares addresses numerically, not as text", () => {
    const sorted = [
      "2603:1000::/48",
      "20.0.0.0/8",
      "9.0.0.0/8",
      "20.0.0.0/16",
      "2603:1000:4::/48",
      "2001:db8::1/128",
      "::/0",
    ].sort(comparePrefixText);
    expect(sorted).toEqual([
      "9.0.0.0/8",
      "20.0.0.0/8",
      "20.0.0.0/16",
      "::/0",
      "2001:db8::1/128",
      "2603:1000::/48",
      "2603:1000:4::/48",
    ]);
  });
});
