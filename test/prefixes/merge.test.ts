import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidPrefixError } from "../../src/errors.js";
import { formatPrefix, parsePrefix, type Prefix } from "../../src/prefixes/ipv4.js";
import { addressCount, appendRangeAsPrefixes, mergePrefixes } from "../../src/prefixes/merge.js";
import {
  bitmapOf,
  blocksOfBitmap,
  randomPrefixes,
  shapeProblems,
  sizeOf,
  smallInstance,
  uncoveredAddresses,
  unionSize,
} from "./oracles.js";

const p = (text: string): Prefix => parsePrefix(text, { mode: "strict" }).prefix;
const merged = (...texts: string[]): string[] => mergePrefixes(texts.map(p)).map(formatPrefix);

const anyPrefix = fc
  .record({ address: fc.integer({ min: 0, max: 2 ** 32 - 1 }), length: fc.integer({ min: 0, max: 32 }) })
  .map(({ address, length }) => ({ base: Math.floor(address / sizeOf(length)) * sizeOf(length), length }));

describe("mergePrefixes", () => {
  it("merges adjacent siblings into their parent", () => {
    expect(merged("10.0.0.0/25", "10.0.0.128/25")).toEqual(["10.0.0.0/24"]);
    expect(merged("10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/25")).toEqual(["10.0.0.0/24"]);
  });

  it("does not merge adjacent blocks that are not siblings", () => {
    // 10.0.0.128/25 + 10.0.1.0/25 is a contiguous range, but no single prefix is exactly that range.
    expect(merged("10.0.1.0/25", "10.0.0.128/25")).toEqual(["10.0.0.128/25", "10.0.1.0/25"]);
  });

  it("drops prefixes contained in others and duplicates", () => {
    expect(merged("10.0.0.0/16", "10.0.5.7", "10.0.0.0/16", "10.0.255.0/24")).toEqual(["10.0.0.0/16"]);
  });

  it("re-expresses a union of overlapping ranges as its minimal aligned blocks", () => {
    // Addresses 10.0.0.1 … 10.0.0.6: six addresses need four prefixes.
    expect(merged("10.0.0.1", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6")).toEqual([
      "10.0.0.1/32",
      "10.0.0.2/31",
      "10.0.0.4/31",
      "10.0.0.6/32",
    ]);
  });

  it("handles the ends of the address space and the whole space", () => {
    expect(merged("0.0.0.0/1", "128.0.0.0/1")).toEqual(["0.0.0.0/0"]);
    expect(merged("255.255.255.255", "255.255.255.254")).toEqual(["255.255.255.254/31"]);
    expect(merged("0.0.0.0", "0.0.0.1")).toEqual(["0.0.0.0/31"]);
    expect(addressCount(mergePrefixes([p("0.0.0.0/0"), p("1.2.3.4")]))).toBe(2 ** 32);
  });

  it("refuses a prefix with host bits set or an impossible length instead of moving addresses", () => {
    expect(() => mergePrefixes([{ base: p("10.0.0.1").base, length: 24 }])).toThrow(InvalidPrefixError);
    expect(() => mergePrefixes([{ base: 0, length: 33 }])).toThrow(InvalidPrefixError);
    expect(() => mergePrefixes([{ base: 2 ** 32, length: 32 }])).toThrow(InvalidPrefixError);
    expect(() => mergePrefixes([{ base: -1, length: 32 }])).toThrow(InvalidPrefixError);
  });

  it("returns an empty list for no input", () => {
    expect(mergePrefixes([])).toEqual([]);
  });

  it("is exact and minimal: equal to the block decomposition of the address set, on small universes", () => {
    fc.assert(
      fc.property(smallInstance, ({ universe, targets }) => {
        expect(mergePrefixes(targets)).toEqual(blocksOfBitmap(bitmapOf(targets, universe), universe));
      }),
      { numRuns: 500 },
    );
  });

  it("keeps the union unchanged and returns sorted, disjoint, canonical prefixes with no mergeable siblings", () => {
    fc.assert(
      fc.property(fc.array(anyPrefix, { maxLength: 80 }), (prefixes) => {
        const out = mergePrefixes(prefixes);
        expect(shapeProblems(out, 0)).toEqual([]);
        expect(unionSize(out)).toBe(unionSize(prefixes));
        expect(uncoveredAddresses(prefixes, out)).toBe(0);
        expect(addressCount(out)).toBe(unionSize(prefixes));
        for (let index = 0; index + 1 < out.length; index += 1) {
          const a = out[index] as Prefix;
          const b = out[index + 1] as Prefix;
          const siblings =
            a.length === b.length &&
            a.length > 0 &&
            a.base % sizeOf(a.length - 1) === 0 &&
            b.base === a.base + sizeOf(a.length);
          expect(siblings).toBe(false);
        }
        expect(mergePrefixes(out)).toEqual(out);
      }),
      { numRuns: 500 },
    );
  });

  it("gives the same result for 100,000 random prefixes in any order", () => {
    const prefixes = randomPrefixes(100_000, 3, 16, 32);
    const out = mergePrefixes(prefixes);
    expect(mergePrefixes([...prefixes].reverse())).toEqual(out);
    expect(shapeProblems(out, 0)).toEqual([]);
    expect(unionSize(out)).toBe(unionSize(prefixes));
  });
});

describe("appendRangeAsPrefixes", () => {
  it("splits a range into the largest aligned blocks", () => {
    const out: Prefix[] = [];
    appendRangeAsPrefixes(p("10.0.0.1").base, p("10.0.1.0").base + 1, out);
    expect(out.map(formatPrefix)).toEqual([
      "10.0.0.1/32",
      "10.0.0.2/31",
      "10.0.0.4/30",
      "10.0.0.8/29",
      "10.0.0.16/28",
      "10.0.0.32/27",
      "10.0.0.64/26",
      "10.0.0.128/25",
      "10.0.1.0/32",
    ]);
  });
});
