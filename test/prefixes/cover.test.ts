import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CoverInfeasibleError, ExtraAddressCapError, UsageError } from "../../src/errors.js";
import { MAX_COVER_WORK, minimumBudget, optimalCover, type Cover } from "../../src/prefixes/cover.js";
import { formatPrefix, parsePrefix, type Prefix } from "../../src/prefixes/ipv4.js";
import { mergePrefixes } from "../../src/prefixes/merge.js";
import {
  bitmapOf,
  blocksOfBitmap,
  countBits,
  exhaustiveCover,
  randomPrefixes,
  referenceOptima,
  referenceOptimum,
  seededRandom,
  shapeProblems,
  sizeOf,
  smallInstance,
  supersetOptimum,
  uncoveredAddresses,
  unionSize,
} from "./oracles.js";

const p = (text: string): Prefix => parsePrefix(text, { mode: "strict" }).prefix;
const texts = (cover: Cover): string[] => cover.prefixes.map(formatPrefix);

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}

/** Everything a cover must satisfy, whatever the input. */
function expectValidCover(cover: Cover, targets: readonly Prefix[], maxPrefixes: number, minLength = 0): void {
  expect(shapeProblems(cover.prefixes, minLength)).toEqual([]);
  expect(cover.prefixes.length).toBeLessThanOrEqual(maxPrefixes);
  expect(uncoveredAddresses(targets, cover.prefixes)).toBe(0);
  expect(cover.targetAddresses).toBe(unionSize(targets));
  expect(cover.coveredAddresses).toBe(unionSize(cover.prefixes));
  expect(cover.extraAddresses).toBe(cover.coveredAddresses - cover.targetAddresses);
}

describe("optimalCover on hand-made inputs", () => {
  it("returns the lossless merge unchanged when it fits in the budget", () => {
    const cover = optimalCover([p("10.0.0.0/25"), p("10.0.0.128/25"), p("192.168.1.1")], { maxPrefixes: 2 });
    expect(texts(cover)).toEqual(["10.0.0.0/24", "192.168.1.1/32"]);
    expect(cover.extraAddresses).toBe(0);
    expect(cover.mergedPrefixes).toBe(2);
    expect(cover.targetAddresses).toBe(257);
  });

  it("widens the cheapest pair when one rule too many is needed", () => {
    // 10.0.0.0 + 10.0.0.2 cost 2 extra as 10.0.0.0/30; joining either with 10.0.1.0 would cost hundreds.
    const cover = optimalCover([p("10.0.0.0"), p("10.0.0.2"), p("10.0.1.0")], { maxPrefixes: 2 });
    expect(texts(cover)).toEqual(["10.0.0.0/30", "10.0.1.0/32"]);
    expect(cover.extraAddresses).toBe(2);
  });

  it("covers everything with one prefix when the budget is one rule", () => {
    const cover = optimalCover([p("10.0.0.0/24"), p("10.0.3.0/24")], { maxPrefixes: 1 });
    expect(texts(cover)).toEqual(["10.0.0.0/22"]);
    expect(cover.extraAddresses).toBe(512);
  });

  it("emits 0.0.0.0/0 when targets on both halves of the space must share one rule", () => {
    const cover = optimalCover([p("1.0.0.0/8"), p("200.0.0.0/8")], { maxPrefixes: 1 });
    expect(texts(cover)).toEqual(["0.0.0.0/0"]);
    expect(cover.coveredAddresses).toBe(2 ** 32);
    expect(cover.extraAddresses).toBe(2 ** 32 - 2 * 2 ** 24);
  });

  it("returns no prefixes for no targets, even with a zero budget", () => {
    const cover = optimalCover([], { maxPrefixes: 0 });
    expect(cover.prefixes).toEqual([]);
    expect(cover.targetAddresses).toBe(0);
    expect(cover.extraAddresses).toBe(0);
  });

  it("beats greedy pair merging three times over on an input built to mislead it", () => {
    // Every neighbouring pair costs 380 extra addresses to merge: greedy takes the leftmost pair
    // three times (saving one rule each), while 10.0.8.0/21 absorbs four rules for 380 once.
    const targets = [
      "10.0.2.0/25",
      "10.0.3.148/30",
      "10.0.6.128/25",
      "10.0.7.116/30",
      "10.0.8.0/25",
      "10.0.9.224/30",
      "10.0.10.0/23",
      "10.0.12.0/22",
    ].map(p);
    const cover = optimalCover(targets, { maxPrefixes: 5 });
    expect(texts(cover)).toEqual(["10.0.2.0/25", "10.0.3.148/30", "10.0.6.128/25", "10.0.7.116/30", "10.0.8.0/21"]);
    expect(cover.extraAddresses).toBe(380);
    expect(greedyExtra(targets, 5)).toBe(3 * 380);
  });
});

describe("optimalCover options", () => {
  it("never emits a prefix shorter than the floor", () => {
    const cover = optimalCover([p("10.0.0.0/22"), p("10.0.8.1")], { maxPrefixes: 5, minPrefixLength: 24 });
    expect(texts(cover)).toEqual(["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24", "10.0.8.1/32"]);
    expect(cover.extraAddresses).toBe(0);
  });

  it("says the smallest budget that works under the floor when the budget is too small", () => {
    const targets = [p("10.0.0.0/22"), p("10.0.8.1"), p("10.0.8.7")];
    const error = thrown(() => optimalCover(targets, { maxPrefixes: 4, minPrefixLength: 24 }));
    expect(error).toBeInstanceOf(CoverInfeasibleError);
    expect((error as CoverInfeasibleError).details).toMatchObject({ minimumBudget: 5, minPrefixLength: 24, budget: 4 });
    expect((error as CoverInfeasibleError).describe()).toContain("at least 5 rules");
    // And that budget does work: the two /32s share 10.0.8.0/24 or better.
    const cover = optimalCover(targets, { maxPrefixes: 5, minPrefixLength: 24 });
    expect(cover.prefixes).toHaveLength(5);
    expect(texts(cover)).toContain("10.0.8.0/29");
  });

  it("computes the minimum budget as the number of /F blocks the targets touch", () => {
    fc.assert(
      fc.property(smallInstance, fc.integer({ min: 0, max: 32 }), ({ universe, targets }, floor) => {
        const blocks = blocksOfBitmap(bitmapOf(targets, universe), universe, floor);
        const touched = new Set(blocks.map((block) => Math.floor(block.base / sizeOf(floor))));
        expect(minimumBudget(mergePrefixes(targets), floor)).toBe(touched.size);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses a cover whose extra addresses exceed the absolute cap, saying what the best would cost", () => {
    const targets = [p("10.0.0.0"), p("10.0.0.2"), p("10.0.1.0")];
    expect(optimalCover(targets, { maxPrefixes: 2, maxExtraAddresses: 2 }).extraAddresses).toBe(2);
    const error = thrown(() => optimalCover(targets, { maxPrefixes: 2, maxExtraAddresses: 1 }));
    expect(error).toBeInstanceOf(ExtraAddressCapError);
    expect((error as ExtraAddressCapError).details).toMatchObject({
      bestExtraAddresses: 2,
      maxExtraAddresses: 1,
      budget: 2,
    });
  });

  it("refuses a cover whose extra-to-target ratio exceeds the cap", () => {
    const targets = [p("10.0.0.0/24"), p("10.0.3.0/24")]; // best in 1 rule: /22, 512 extra for 512 target
    expect(optimalCover(targets, { maxPrefixes: 1, maxExtraRatio: 1 }).extraAddresses).toBe(512);
    const error = thrown(() => optimalCover(targets, { maxPrefixes: 1, maxExtraRatio: 0.99 }));
    expect(error).toBeInstanceOf(ExtraAddressCapError);
    expect((error as ExtraAddressCapError).details).toMatchObject({ bestExtraAddresses: 512, bestExtraRatio: 1 });
  });

  it("rejects budgets and floors that are not integers in range", () => {
    expect(thrown(() => optimalCover([], { maxPrefixes: 1.5 }))).toBeInstanceOf(UsageError);
    expect(thrown(() => optimalCover([], { maxPrefixes: -1 }))).toBeInstanceOf(UsageError);
    expect(thrown(() => optimalCover([], { maxPrefixes: 1, minPrefixLength: 33 }))).toBeInstanceOf(UsageError);
    expect(thrown(() => optimalCover([], { maxPrefixes: 1, maxExtraRatio: Number.NaN }))).toBeInstanceOf(UsageError);
  });

  it("refuses at once a cover whose work (prefixes × budget) is over the bound, with the figures", () => {
    // 60,000 separate /32s to 40,000 rules: 2.4·10^9 cells, over the 2·10^9 bound.
    const targets = Array.from({ length: 60_000 }, (_, index) => ({ base: index * 4, length: 32 }));
    const error = thrown(() => optimalCover(targets, { maxPrefixes: 40_000 }));
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).details).toMatchObject({
      work: 2_400_000_000,
      maxWork: MAX_COVER_WORK,
      leaves: 60_000,
      budget: 40_000,
      largestBudget: 33_333,
    });
    expect((error as UsageError).describe()).toMatch(/2,400,000,000 units of work .* bound of 2,000,000,000/);
    expect((error as UsageError).describe()).toContain("Allow at most 33,333 rules, or at least 60,000");
    // No cover to compute (everything fits) is no work, however large the budget.
    expect(optimalCover(targets, { maxPrefixes: 60_000 }).prefixes).toHaveLength(60_000);
  });

  it("counts the floor's pieces as the prefixes of the work", () => {
    // 10.0.0.0/8 is 65,536 pieces of /24; with two /32s in each of 20,000 /24s of 11.0.0.0/8: 105,536 leaves.
    const pairs = Array.from({ length: 40_000 }, (_, index) => ({
      base: p("11.0.0.0").base + Math.floor(index / 2) * 256 + (index % 2) * 2,
      length: 32,
    }));
    const error = thrown(() => optimalCover([p("10.0.0.0/8"), ...pairs], { maxPrefixes: 90_000, minPrefixLength: 24 }));
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).details).toMatchObject({ leaves: 105_536, mergedPrefixes: 40_001, budget: 90_000 });
  });

  it("takes an already merged list as it is, and gives the same cover as from the targets", () => {
    const targets = randomPrefixes(2_000, 11, 16, 32);
    const merged = mergePrefixes(targets);
    expect(Object.isFrozen(merged)).toBe(true);
    expect(optimalCover(merged, { maxPrefixes: 50 }).prefixes).toEqual(
      optimalCover(targets, { maxPrefixes: 50 }).prefixes,
    );
    // Everything fits: the merged list itself is the cover.
    expect(optimalCover(merged, { maxPrefixes: merged.length }).prefixes).toBe(merged);
    expect(optimalCover(targets, { maxPrefixes: merged.length }).prefixes).toEqual(merged);
  });

  it("prefers the already applied prefix among covers of equal cost", () => {
    // Two identical pairs: merging either costs 2 extra addresses.
    const targets = ["10.0.0.0", "10.0.0.2", "10.0.1.0", "10.0.1.2"].map(p);
    const left = optimalCover(targets, { maxPrefixes: 3, preferred: [p("10.0.0.0/30")] });
    const right = optimalCover(targets, { maxPrefixes: 3, preferred: [p("10.0.1.0/30")] });
    expect(texts(left)).toEqual(["10.0.0.0/30", "10.0.1.0/32", "10.0.1.2/32"]);
    expect(texts(right)).toEqual(["10.0.0.0/32", "10.0.0.2/32", "10.0.1.0/30"]);
    expect(left.extraAddresses).toBe(2);
    expect(right.extraAddresses).toBe(2);
    expect(left.preferredKept).toBe(1);
    expect(right.preferredKept).toBe(1);
  });

  it("never pays an extra address to keep an applied prefix", () => {
    const targets = [p("10.0.0.0"), p("10.0.0.2"), p("10.0.1.0")];
    const cover = optimalCover(targets, { maxPrefixes: 2, preferred: [p("10.0.0.0/23")] });
    expect(cover.extraAddresses).toBe(2);
    expect(cover.preferredKept).toBe(0);
  });
});

describe("optimalCover properties", () => {
  it("matches exhaustive search on small random instances, floors and preferred prefixes included", () => {
    const instance = smallInstance.chain((base) =>
      fc
        .record({
          maxPrefixes: fc.integer({ min: 0, max: 6 }),
          minLength: fc.oneof(
            fc.constant(0),
            fc.integer({ min: base.universeLength - 1, max: Math.min(32, base.universeLength + 3) }),
          ),
          preferredPicks: fc.array(fc.nat(), { maxLength: 4 }),
        })
        .map((options) => ({ ...base, ...options })),
    );
    fc.assert(
      fc.property(instance, ({ universe, targets, maxPrefixes, minLength, preferredPicks }) => {
        const leaves = blocksOfBitmap(bitmapOf(targets, universe), universe, minLength);
        fc.pre(leaves.length <= 12);
        // Preferred: random enclosing prefixes of runs of leaves (the covers' own vocabulary).
        const preferred = preferredPicks.map((pick) => {
          const first = leaves[pick % Math.max(1, leaves.length)];
          const last = leaves[(pick >> 4) % Math.max(1, leaves.length)];
          if (first === undefined || last === undefined) return { base: universe.base, length: 32 };
          const low = Math.min(first.base, last.base);
          const high = Math.max(first.base + sizeOf(first.length), last.base + sizeOf(last.length)) - 1;
          for (let length = 32; length >= 0; length -= 1) {
            const base = Math.floor(low / sizeOf(length)) * sizeOf(length);
            if (high < base + sizeOf(length)) return { base, length };
          }
          return { base: 0, length: 0 };
        });
        const expected = exhaustiveCover(targets, universe, maxPrefixes, minLength, preferred);
        if (expected === "infeasible") {
          expect(() => optimalCover(targets, { maxPrefixes, minPrefixLength: minLength, preferred })).toThrow(
            CoverInfeasibleError,
          );
          return;
        }
        const cover = optimalCover(targets, { maxPrefixes, minPrefixLength: minLength, preferred });
        expectValidCover(cover, targets, maxPrefixes, minLength);
        expect(cover.extraAddresses).toBe(expected.extraAddresses);
        expect(cover.preferredKept).toBe(expected.bestPreferredKept);
      }),
      { numRuns: 600 },
    );
  });

  it("matches the definition (the cheapest superset that K rules can express) on tiny universes", () => {
    const instance = fc.record({
      dense: fc.boolean(),
      slot: fc.nat(),
      maskA: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      maskB: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      maxPrefixes: fc.integer({ min: 0, max: 5 }),
      minLength: fc.oneof(fc.constant(0), fc.integer({ min: 26, max: 32 })),
    });
    fc.assert(
      fc.property(instance, ({ dense, slot, maskA, maskB, maxPrefixes, minLength }) => {
        // /28 with any mask, or /27 with a dense mask (at most 16 free addresses to enumerate).
        const size = dense ? 32 : 16;
        const universe = { base: (slot % 2 ** 27) * size, size };
        const mask = dense ? (maskA | maskB) >>> 0 : maskA & 0xffff;
        const bits = new Uint8Array(size).map((_, index) => (mask >>> index) & 1);
        fc.pre(size - countBits(bits) <= 16);
        const targets = blocksOfBitmap(bits, universe).reverse();
        const expected = supersetOptimum(targets, universe, maxPrefixes, minLength);
        if (expected === "infeasible") {
          expect(() => optimalCover(targets, { maxPrefixes, minPrefixLength: minLength })).toThrow(
            CoverInfeasibleError,
          );
          return;
        }
        const cover = optimalCover(targets, { maxPrefixes, minPrefixLength: minLength });
        expectValidCover(cover, targets, maxPrefixes, minLength);
        expect(cover.extraAddresses).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("covers every target with at most K canonical prefixes on random inputs across the whole space", () => {
    const instance = fc.record({
      targets: fc.array(
        fc
          .record({ address: fc.integer({ min: 0, max: 2 ** 32 - 1 }), length: fc.integer({ min: 0, max: 32 }) })
          .map(({ address, length }) => ({
            base: Math.floor(address / sizeOf(length)) * sizeOf(length),
            length,
          })),
        { maxLength: 60 },
      ),
      maxPrefixes: fc.integer({ min: 1, max: 70 }),
      minLength: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 12 })),
    });
    fc.assert(
      fc.property(instance, ({ targets, maxPrefixes, minLength }) => {
        const merged = mergePrefixes(targets);
        fc.pre(minimumBudget(merged, minLength) <= maxPrefixes);
        const cover = optimalCover(targets, { maxPrefixes, minPrefixLength: minLength });
        expectValidCover(cover, targets, maxPrefixes, minLength);
        expect(cover.extraAddresses).toBe(referenceOptimum(merged, maxPrefixes, minLength));
      }),
      { numRuns: 200 },
    );
  });

  it("gives the same output for the same set, whatever the order, duplicates or split form of the input", () => {
    fc.assert(
      fc.property(smallInstance, fc.integer({ min: 1, max: 5 }), fc.integer(), ({ targets }, maxPrefixes, seed) => {
        const random = seededRandom(seed);
        // The same address set: shuffled, with duplicates, and with some prefixes split in halves.
        const variant: Prefix[] = [];
        for (const prefix of targets) {
          if (prefix.length < 32 && random() < 0.5) {
            variant.push(
              { base: prefix.base, length: prefix.length + 1 },
              { base: prefix.base + sizeOf(prefix.length + 1), length: prefix.length + 1 },
            );
          } else {
            variant.push(prefix);
          }
          if (random() < 0.3) variant.push(prefix);
        }
        for (let index = variant.length - 1; index > 0; index -= 1) {
          const other = Math.floor(random() * (index + 1));
          [variant[index], variant[other]] = [variant[other] as Prefix, variant[index] as Prefix];
        }
        const first = optimalCover(targets, { maxPrefixes });
        expect(optimalCover(variant, { maxPrefixes })).toEqual(first);
        expect(optimalCover(targets, { maxPrefixes })).toEqual(first);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps at least as many applied prefixes as the cover computed without preferences, at the same cost", () => {
    fc.assert(
      fc.property(
        smallInstance,
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        ({ targets }, maxPrefixes, picks) => {
          const plain = optimalCover(targets, { maxPrefixes });
          const preferred = picks
            .map((pick) => plain.prefixes[pick % Math.max(1, plain.prefixes.length)])
            .filter((x): x is Prefix => x !== undefined);
          // Also prefer some prefixes the plain cover did not pick: siblings-of-parents of its rules.
          const others = plain.prefixes
            .filter((_, index) => index % 2 === 1)
            .map((prefix) => ({ base: prefix.base, length: prefix.length }));
          const cover = optimalCover(targets, { maxPrefixes, preferred: [...preferred, ...others] });
          const keys = new Set([...preferred, ...others].map(formatPrefix));
          expect(cover.extraAddresses).toBe(plain.extraAddresses);
          expect(cover.preferredKept).toBe(cover.prefixes.filter((prefix) => keys.has(formatPrefix(prefix))).length);
          expect(cover.preferredKept).toBeGreaterThanOrEqual(
            plain.prefixes.filter((prefix) => keys.has(formatPrefix(prefix))).length,
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("optimalCover at scale", () => {
  it("matches the reference optimum at every budget, where the kernel prunes splits and groups four budgets", () => {
    // The pruning bounds and the four-budget groups meet every edge (caps below 5, ranges shorter
    // than a group, infinite costs under a floor, ties at the bound) across budgets 1 … 60:
    // uniform and clustered inputs, and dense ones (/29 … /32 inside one /20 … /25, many equal costs).
    const inside = (targets: readonly Prefix[], bits: number): Prefix[] =>
      targets.map(({ base, length }) => {
        const size = sizeOf(length);
        return { base: Math.floor((0x0a000000 + (base % 2 ** bits)) / size) * size, length };
      });
    const instances: { targets: Prefix[]; minLength: number }[] = [
      { targets: randomPrefixes(700, 11, 14, 32), minLength: 0 },
      { targets: randomPrefixes(700, 11, 14, 32), minLength: 8 },
      { targets: inside(randomPrefixes(700, 12, 22, 32), 24), minLength: 0 },
    ];
    for (let seed = 0; seed < 200; seed += 1) {
      const targets = randomPrefixes(20 + ((seed * 53) % 200), 100 + seed, 29, 32);
      instances.push({ targets: inside(targets, 7 + (seed % 6)), minLength: 0 });
    }
    const maxBudget = 60;
    for (const { targets, minLength } of instances) {
      const merged = mergePrefixes(targets);
      const optima = referenceOptima(merged, maxBudget, minLength);
      for (let budget = Math.max(1, minimumBudget(merged, minLength)); budget <= maxBudget; budget += 1) {
        const cover = optimalCover(targets, { maxPrefixes: budget, minPrefixLength: minLength });
        expectValidCover(cover, targets, budget, minLength);
        expect(cover.extraAddresses).toBe(optima[budget]);
      }
    }
  });

  it("covers 20,000 random prefixes with 300 rules and matches the reference optimum", () => {
    const targets = randomPrefixes(20_000, 7, 20, 32);
    const cover = optimalCover(targets, { maxPrefixes: 300 });
    expectValidCover(cover, targets, 300);
    expect(cover.prefixes).toHaveLength(300);
    expect(cover.extraAddresses).toBe(referenceOptimum(mergePrefixes(targets), 300, 0));
  });
});

/**
 * The greedy most tools use: repeatedly replace the two neighbouring rules whose smallest common
 * prefix adds the fewest addresses, until the list fits. For the comparison test only.
 */
function greedyExtra(targets: readonly Prefix[], maxPrefixes: number): number {
  let rules = mergePrefixes(targets);
  const target = unionSize(targets);
  while (rules.length > maxPrefixes) {
    let bestIndex = 0;
    let bestCost = Infinity;
    let bestPrefix: Prefix = { base: 0, length: 0 };
    for (let index = 0; index + 1 < rules.length; index += 1) {
      const a = rules[index] as Prefix;
      const b = rules[index + 1] as Prefix;
      let length = Math.min(a.length, b.length);
      while (Math.floor(a.base / sizeOf(length)) !== Math.floor(b.base / sizeOf(length))) length -= 1;
      const merged = { base: Math.floor(a.base / sizeOf(length)) * sizeOf(length), length };
      const cost = unionSize([...rules.filter((_, i) => i !== index && i !== index + 1), merged]) - unionSize(rules);
      if (cost < bestCost) {
        bestCost = cost;
        bestIndex = index;
        bestPrefix = merged;
      }
    }
    rules = mergePrefixes([...rules.slice(0, bestIndex), bestPrefix, ...rules.slice(bestIndex + 2)]);
  }
  return unionSize(rules) - target;
}
