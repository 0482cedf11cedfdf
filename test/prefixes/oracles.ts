/**
 * Slow, independent references for the prefix engine tests. They share no code with src/prefixes
 * beyond the `Prefix` shape: address sets are explicit bitmaps over a small universe, and the
 * searches enumerate instead of optimising.
 */
import fc from "fast-check";
import type { Prefix } from "../../src/prefixes/ipv4.js";
import { seededRandom } from "../support/random.js";
export { seededRandom } from "../support/random.js";

export const SPACE = 2 ** 32;

export function sizeOf(length: number): number {
  return 2 ** (32 - length);
}

/** A small aligned block of the IPv4 space, with the addresses of a target set marked. */
export interface Universe {
  readonly base: number;
  readonly size: number;
}

export function bitmapOf(prefixes: readonly Prefix[], universe: Universe): Uint8Array {
  const bits = new Uint8Array(universe.size);
  for (const prefix of prefixes) {
    const start = prefix.base - universe.base;
    for (let offset = 0; offset < sizeOf(prefix.length); offset += 1) bits[start + offset] = 1;
  }
  return bits;
}

export function countBits(bits: Uint8Array): number {
  let count = 0;
  for (const bit of bits) count += bit;
  return count;
}

/**
 * The minimal exact list of aligned blocks of a bitmap (sorted), no block larger than
 * 2^(32 − minLength): recursive halving, a block is kept whole when it is full.
 */
export function blocksOfBitmap(bits: Uint8Array, universe: Universe, minLength = 0): Prefix[] {
  const out: Prefix[] = [];
  const maxSize = sizeOf(minLength);
  const visit = (offset: number, size: number): void => {
    let ones = 0;
    for (let index = offset; index < offset + size; index += 1) ones += bits[index] as number;
    if (ones === 0) return;
    if (ones === size && size <= maxSize) {
      out.push({ base: universe.base + offset, length: 32 - Math.log2(size) });
      return;
    }
    visit(offset, size / 2);
    visit(offset + size / 2, size / 2);
  };
  visit(0, universe.size);
  return out;
}

/** The smallest prefix containing [first, last] (inclusive addresses). */
export function enclosingPrefix(first: number, last: number): Prefix {
  for (let length = 32; length >= 0; length -= 1) {
    const size = sizeOf(length);
    const base = Math.floor(first / size) * size;
    if (last < base + size) return { base, length };
  }
  return { base: 0, length: 0 };
}

export interface OracleResult {
  readonly extraAddresses: number;
  /** Among optimal covers, the most prefixes that are in `preferred`. */
  readonly bestPreferredKept: number;
}

/**
 * Exhaustive search over every way of cutting the sorted leaves (the target set split into
 * blocks no shorter than /F) into at most K consecutive groups, each covered by its smallest
 * enclosing prefix. Every optimal cover has this form (a rule covers a run of consecutive leaves;
 * shrinking it to that run's enclosing prefix never costs more). Exponential: keep leaves ≤ 12.
 */
export function exhaustiveCover(
  targets: readonly Prefix[],
  universe: Universe,
  maxPrefixes: number,
  minLength: number,
  preferred: readonly Prefix[] = [],
): OracleResult | "infeasible" {
  const bits = bitmapOf(targets, universe);
  const targetCount = countBits(bits);
  const leaves = blocksOfBitmap(bits, universe, minLength);
  const n = leaves.length;
  if (n === 0) return { extraAddresses: 0, bestPreferredKept: 0 };
  if (n > 16) throw new Error(`exhaustiveCover: ${n} leaves is too many to enumerate`);
  const preferredKeys = new Set(preferred.map((prefix) => `${prefix.base}/${prefix.length}`));
  let bestExtra = Infinity;
  let bestKept = -1;
  for (let cuts = 0; cuts < 2 ** (n - 1); cuts += 1) {
    const groups: Prefix[] = [];
    let start = 0;
    for (let index = 0; index < n; index += 1) {
      const isLast = index === n - 1 || (cuts & (1 << index)) !== 0;
      if (!isLast) continue;
      const first = leaves[start] as Prefix;
      const last = leaves[index] as Prefix;
      groups.push(enclosingPrefix(first.base, last.base + sizeOf(last.length) - 1));
      start = index + 1;
    }
    if (groups.length > maxPrefixes || groups.some((group) => group.length < minLength)) continue;
    const covered = countBits(bitmapOf(groups, universe));
    const extra = covered - targetCount;
    // Overlapping groups are a worse version of a coarser cut; count kept only for disjoint ones.
    const disjoint = groups.reduce((sum, group) => sum + sizeOf(group.length), 0) === covered;
    const kept = disjoint ? groups.filter((group) => preferredKeys.has(`${group.base}/${group.length}`)).length : -1;
    if (extra < bestExtra || (extra === bestExtra && kept > bestKept)) {
      bestExtra = extra;
      bestKept = kept;
    }
  }
  return bestExtra === Infinity ? "infeasible" : { extraAddresses: bestExtra, bestPreferredKept: bestKept };
}

/**
 * The definition itself, for universes of at most 32 addresses: every address set S ⊇ T is a
 * candidate union; it needs as many rules as its minimal block decomposition (blocks no shorter
 * than /F). The answer is the smallest |S| − |T| over the S that need at most K rules.
 */
export function supersetOptimum(
  targets: readonly Prefix[],
  universe: Universe,
  maxPrefixes: number,
  minLength: number,
): number | "infeasible" {
  const bits = bitmapOf(targets, universe);
  const free: number[] = [];
  bits.forEach((bit, index) => {
    if (bit === 0) free.push(index);
  });
  if (free.length > 16) throw new Error(`supersetOptimum: ${free.length} free addresses is too many to enumerate`);
  let best = Infinity;
  for (let mask = 0; mask < 2 ** free.length; mask += 1) {
    const superset = bits.slice();
    let added = 0;
    free.forEach((index, position) => {
      if ((mask & (1 << position)) !== 0) {
        superset[index] = 1;
        added += 1;
      }
    });
    if (added >= best) continue;
    if (blocksOfBitmap(superset, universe, minLength).length <= maxPrefixes) best = added;
  }
  return best === Infinity ? "infeasible" : best;
}

/**
 * A straightforward reference for real-size inputs (hundreds of prefixes): the same recurrence
 * as the engine but over the UNcompressed trie (every prefix on the way down is a candidate rule),
 * with plain arrays and recursion. best[k] = least extra addresses with at most k rules.
 */
export function referenceOptimum(mergedTargets: readonly Prefix[], maxPrefixes: number, minLength: number): number {
  return referenceOptima(mergedTargets, maxPrefixes, minLength)[maxPrefixes] as number;
}

/** `referenceOptimum` for every budget 0 … maxPrefixes at once (index = budget). */
export function referenceOptima(mergedTargets: readonly Prefix[], maxPrefixes: number, minLength: number): number[] {
  const leaves: Prefix[] = [];
  for (const prefix of mergedTargets) {
    if (prefix.length >= minLength) {
      leaves.push(prefix);
      continue;
    }
    for (let base = prefix.base; base < prefix.base + sizeOf(prefix.length); base += sizeOf(minLength))
      leaves.push({ base, length: minLength });
  }
  const solveNode = (base: number, length: number, from: number, to: number): number[] => {
    const count = to - from;
    const cap = Math.min(count, maxPrefixes);
    const best = new Array<number>(cap + 1).fill(Infinity);
    best[0] = count === 0 ? 0 : Infinity;
    if (count === 0) return best;
    const only = leaves[from] as Prefix;
    if (count === 1 && only.base === base && only.length === length) {
      for (let k = 1; k <= cap; k += 1) best[k] = 0;
      return best;
    }
    let targetsInside = 0;
    for (let index = from; index < to; index += 1) targetsInside += sizeOf((leaves[index] as Prefix).length);
    const half = sizeOf(length + 1);
    let middle = from;
    while (middle < to && (leaves[middle] as Prefix).base < base + half) middle += 1;
    const low = solveNode(base, length + 1, from, middle);
    const high = solveNode(base + half, length + 1, middle, to);
    const at = (array: number[], k: number): number => array[Math.min(k, array.length - 1)] as number;
    for (let k = 1; k <= cap; k += 1) {
      let value = length >= minLength ? sizeOf(length) - targetsInside : Infinity;
      for (let i = 0; i <= k; i += 1) value = Math.min(value, at(low, i) + at(high, k - i));
      best[k] = value;
    }
    return best;
  };
  const result = solveNode(0, 0, 0, leaves.length);
  return Array.from({ length: maxPrefixes + 1 }, (_, k) => result[Math.min(k, result.length - 1)] as number);
}

export function randomPrefixes(count: number, seed: number, minLength: number, maxLength: number): Prefix[] {
  const random = seededRandom(seed);
  const out: Prefix[] = [];
  for (let index = 0; index < count; index += 1) {
    const length = minLength + Math.floor(random() * (maxLength - minLength + 1));
    const size = sizeOf(length);
    out.push({ base: Math.floor((random() * SPACE) / size) * size, length });
  }
  return out;
}

/** Small instances: a few prefixes inside one random /U block (U from 24 to 29). */
export const smallInstance = fc
  .record({
    universeLength: fc.integer({ min: 24, max: 29 }),
    universeSlot: fc.nat(),
    parts: fc.array(fc.record({ offset: fc.nat(), extraLength: fc.integer({ min: 0, max: 8 }) }), { maxLength: 8 }),
  })
  .map(({ universeLength, universeSlot, parts }) => {
    const size = sizeOf(universeLength);
    const universe: Universe = { base: (universeSlot % 2 ** universeLength) * size, size };
    const targets = parts.map(({ offset, extraLength }) => {
      const length = Math.min(32, universeLength + extraLength);
      const blockSize = sizeOf(length);
      return { base: universe.base + Math.floor((offset % size) / blockSize) * blockSize, length };
    });
    return { universe, universeLength, targets };
  });

/** Checks the shape every cover must have: canonical, sorted, disjoint, within the floor. */
export function shapeProblems(prefixes: readonly Prefix[], minLength: number): string[] {
  const problems: string[] = [];
  let previousEnd = -1;
  for (const prefix of prefixes) {
    const size = sizeOf(prefix.length);
    if (!Number.isInteger(prefix.length) || prefix.length < minLength || prefix.length > 32)
      problems.push(`bad length ${prefix.length}`);
    if (prefix.base % size !== 0) problems.push(`host bits set in ${prefix.base}/${prefix.length}`);
    if (prefix.base < previousEnd) problems.push(`not sorted or overlapping at ${prefix.base}/${prefix.length}`);
    previousEnd = prefix.base + size;
  }
  return problems;
}

/** Target addresses not inside the union of `cover` (both as prefix lists; cover sorted and disjoint). */
export function uncoveredAddresses(targets: readonly Prefix[], cover: readonly Prefix[]): number {
  const intervals = targets
    .map((prefix) => [prefix.base, prefix.base + sizeOf(prefix.length)] as const)
    .sort((a, b) => a[0] - b[0]);
  let uncovered = 0;
  let c = 0;
  let reached = 0; // addresses below this are already counted
  for (const [start0, end] of intervals) {
    let start = Math.max(start0, reached);
    while (start < end) {
      while (c < cover.length && (cover[c] as Prefix).base + sizeOf((cover[c] as Prefix).length) <= start) c += 1;
      const next = cover[c];
      if (next === undefined || next.base >= end) {
        uncovered += end - start;
        start = end;
      } else if (next.base > start) {
        uncovered += next.base - start;
        start = next.base;
      } else {
        start = Math.min(end, next.base + sizeOf(next.length));
      }
    }
    reached = Math.max(reached, end);
  }
  return uncovered;
}

/** The number of addresses in the union of any prefixes (overlaps counted once). */
export function unionSize(prefixes: readonly Prefix[]): number {
  const intervals = prefixes
    .map((prefix) => [prefix.base, prefix.base + sizeOf(prefix.length)] as const)
    .sort((a, b) => a[0] - b[0]);
  let total = 0;
  let reached = 0;
  for (const [start, end] of intervals) {
    if (end <= reached) continue;
    total += end - Math.max(start, reached);
    reached = end;
  }
  return total;
}
