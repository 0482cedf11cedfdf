import { InvalidPrefixError } from "../errors.js";
import { IPV4_BITS, IPV4_SPACE, SIZE_OF_LENGTH, type Prefix } from "./ipv4.js";

/**
 * Prefixes as two parallel typed arrays (no object per prefix): what the million-line paths
 * (prefix files, big service tags) parse into and merge from. Entries 0 … count − 1 are used.
 */
export interface PrefixArrays {
  readonly count: number;
  /** Network addresses, unsigned. */
  readonly bases: Uint32Array;
  /** Prefix lengths, 0 … 32. */
  readonly lengths: Uint8Array;
}

/**
 * The output of a lossless merge: canonical, disjoint, sorted, minimal, and frozen, so that the
 * cover can recognise it (`isMergedList`) and take it as it is instead of merging a second time.
 */
export type MergedPrefixes = readonly Prefix[];

/**
 * Appends to `out` the minimal list of aligned blocks that exactly covers [start, end): at each
 * step the largest block that is aligned at `start` and fits. The decomposition of a range is
 * unique and minimal, so doing it per maximal range gives the minimal list of the whole union.
 */
export function appendRangeAsPrefixes(start: number, end: number, out: Prefix[]): void {
  let cursor = start;
  while (cursor < end) {
    const length = largestBlockAt(cursor, end);
    out.push({ base: cursor, length });
    cursor += 2 ** (IPV4_BITS - length);
  }
}

/** The length of the largest block aligned at `cursor` that ends at or before `end`. */
function largestBlockAt(cursor: number, end: number): number {
  // Lowest set bit of cursor = the largest block aligned at cursor (2^32 when cursor is 0).
  let size = cursor === 0 ? IPV4_SPACE : (cursor & -cursor) >>> 0;
  const room = end - cursor;
  while (size > room) size /= 2;
  return size === IPV4_SPACE ? 0 : Math.clz32(size) + 1;
}

const RADIX_BITS = 16;
const RADIX = 1 << RADIX_BITS;
const RADIX_MASK = RADIX - 1;

/**
 * Sorts `starts` (unsigned) and carries `lasts` along: LSD radix sort in two 16-bit passes,
 * O(n) where a comparison sort on a million doubles was the largest single cost of a merge.
 * Returns the sorted pair (the scratch arrays or the inputs, whichever holds the result).
 */
function radixSortByStart(starts: Uint32Array, lasts: Uint32Array, count: number): [Uint32Array, Uint32Array] {
  if (count < SMALL_SORT) return smallSortByStart(starts, lasts, count);
  const low = new Uint32Array(RADIX);
  const high = new Uint32Array(RADIX);
  for (let index = 0; index < count; index += 1) {
    const key = starts[index] as number;
    low[key & RADIX_MASK] = (low[key & RADIX_MASK] as number) + 1;
    high[key >>> RADIX_BITS] = (high[key >>> RADIX_BITS] as number) + 1;
  }
  prefixSums(low);
  prefixSums(high);
  const startsScratch = new Uint32Array(count);
  const lastsScratch = new Uint32Array(count);
  scatter(starts, lasts, startsScratch, lastsScratch, count, low, 0);
  scatter(startsScratch, lastsScratch, starts, lasts, count, high, RADIX_BITS);
  return [starts, lasts];
}

// Below this, clearing two 64k-entry histograms costs more than a comparison sort (the planner merges short lists often).
const SMALL_SORT = 2048;

function smallSortByStart(starts: Uint32Array, lasts: Uint32Array, count: number): [Uint32Array, Uint32Array] {
  const order = Array.from({ length: count }, (_, index) => index);
  order.sort((a, b) => (starts[a] as number) - (starts[b] as number));
  const sortedStarts = new Uint32Array(count);
  const sortedLasts = new Uint32Array(count);
  order.forEach((from, to) => {
    sortedStarts[to] = starts[from] as number;
    sortedLasts[to] = lasts[from] as number;
  });
  return [sortedStarts, sortedLasts];
}

/** Counts → starting offsets, in place. */
function prefixSums(counts: Uint32Array): void {
  let total = 0;
  for (let digit = 0; digit < RADIX; digit += 1) {
    const c = counts[digit] as number;
    counts[digit] = total;
    total += c;
  }
}

function scatter(
  fromStarts: Uint32Array,
  fromLasts: Uint32Array,
  toStarts: Uint32Array,
  toLasts: Uint32Array,
  count: number,
  offsets: Uint32Array,
  shift: number,
): void {
  for (let index = 0; index < count; index += 1) {
    const key = fromStarts[index] as number;
    const digit = (key >>> shift) & RADIX_MASK;
    const to = offsets[digit] as number;
    offsets[digit] = to + 1;
    toStarts[to] = key;
    toLasts[to] = fromLasts[index] as number;
  }
}

/**
 * The merge itself, on inclusive ranges [starts[i], lasts[i]] (overwritten: they are sorted in
 * place). Writes the minimal prefix list into `out`, which needs room for `count` entries (the
 * minimal list of a union of n prefixes never has more than n), and returns how many it wrote.
 */
function mergeRanges(
  starts: Uint32Array,
  lasts: Uint32Array,
  count: number,
  outBases: Uint32Array,
  outLengths: Uint8Array,
): number {
  if (count === 0) return 0;
  const [sortedStarts, sortedLasts] = radixSortByStart(starts, lasts, count);
  let written = 0;
  let runStart = sortedStarts[0] as number;
  let runLast = sortedLasts[0] as number;
  for (let index = 1; index < count; index += 1) {
    const start = sortedStarts[index] as number;
    const last = sortedLasts[index] as number;
    // Overlapping or touching the current run (touching merges too: [a,b] + [b+1,c] = [a,c]).
    if (start <= runLast + 1) {
      if (last > runLast) runLast = last;
    } else {
      written = writeRange(runStart, runLast + 1, outBases, outLengths, written);
      runStart = start;
      runLast = last;
    }
  }
  return writeRange(runStart, runLast + 1, outBases, outLengths, written);
}

function writeRange(start: number, end: number, bases: Uint32Array, lengths: Uint8Array, written: number): number {
  let cursor = start;
  let at = written;
  while (cursor < end) {
    const length = largestBlockAt(cursor, end);
    bases[at] = cursor;
    lengths[at] = length;
    at += 1;
    cursor += SIZE_OF_LENGTH[length] as number;
  }
  return at;
}

/** Inclusive last address of each prefix, for the merge. */
function lastsOf(bases: Uint32Array, lengths: Uint8Array, count: number): Uint32Array {
  const lasts = new Uint32Array(count);
  for (let index = 0; index < count; index += 1) {
    lasts[index] = (bases[index] as number) + (SIZE_OF_LENGTH[lengths[index] as number] as number) - 1;
  }
  return lasts;
}

/**
 * Lossless merge of prefixes held in typed arrays (canonical, as the byte parser produces them).
 * The input arrays are left untouched.
 */
export function mergePrefixArrays(input: PrefixArrays): PrefixArrays {
  const { count } = input;
  const starts = input.bases.slice(0, count);
  const lasts = lastsOf(input.bases, input.lengths, count);
  const bases = new Uint32Array(count);
  const lengths = new Uint8Array(count);
  const written = mergeRanges(starts, lasts, count, bases, lengths);
  return { count: written, bases: bases.subarray(0, written), lengths: lengths.subarray(0, written) };
}

// The lists this module produced: a brand checked at run time, so the cover does not merge twice.
const MERGED = new WeakSet<readonly Prefix[]>();

/** True for a list `mergePrefixes` or `mergedToPrefixes` returned. */
export function isMergedList(list: readonly Prefix[]): boolean {
  return MERGED.has(list);
}

/** Prefix objects as typed arrays (no check: for prefixes that are canonical already). */
export function arraysOf(prefixes: readonly Prefix[]): PrefixArrays {
  const count = prefixes.length;
  const bases = new Uint32Array(count);
  const lengths = new Uint8Array(count);
  for (let index = 0; index < count; index += 1) {
    const prefix = prefixes[index] as Prefix;
    bases[index] = prefix.base;
    lengths[index] = prefix.length;
  }
  return { count, bases, lengths };
}

/** Objects for the typed arrays' entries (the form the planner works on). */
export function prefixesOf(arrays: PrefixArrays): Prefix[] {
  const out: Prefix[] = new Array<Prefix>(arrays.count);
  for (let index = 0; index < arrays.count; index += 1) {
    out[index] = { base: arrays.bases[index] as number, length: arrays.lengths[index] as number };
  }
  return out;
}

/** `prefixesOf` for the output of `mergePrefixArrays`, marked as merged. */
export function mergedToPrefixes(merged: PrefixArrays): MergedPrefixes {
  const out = prefixesOf(merged);
  Object.freeze(out);
  MERGED.add(out);
  return out;
}

/**
 * Lossless merge: the minimal exact CIDR list of the union of `prefixes` (overlaps removed,
 * adjacent blocks combined into the largest aligned blocks), sorted by base. Input prefixes must
 * be canonical (no host bits set), as `parsePrefix` returns them. O(n): radix sort, then a scan.
 */
export function mergePrefixes(prefixes: readonly Prefix[]): MergedPrefixes {
  return mergedToPrefixes(mergePrefixArrays(canonicalArrays(prefixes)));
}

/**
 * Prefix objects as typed arrays, each checked to be canonical: a non-canonical prefix here is a
 * caller's bug, and merging it anyway would move addresses (`InvalidPrefixError`).
 */
export function canonicalArrays(prefixes: readonly Prefix[]): PrefixArrays {
  const count = prefixes.length;
  const bases = new Uint32Array(count);
  const lengths = new Uint8Array(count);
  for (let index = 0; index < count; index += 1) {
    const { base, length } = prefixes[index] as Prefix;
    if (!(
      Number.isInteger(length) &&
      length >= 0 &&
      length <= IPV4_BITS &&
      Number.isInteger(base) &&
      base >= 0 &&
      base < IPV4_SPACE &&
      base % (SIZE_OF_LENGTH[length] as number) === 0
    )) {
      throw new InvalidPrefixError(
        `{ base: ${String(base)}, length: ${String(length)} } is not a canonical IPv4 prefix.`,
        {
          details: { base: String(base), length: String(length), reason: "not-canonical" },
          remedy: "Build prefixes with parsePrefix.",
        },
      );
    }
    bases[index] = base;
    lengths[index] = length;
  }
  return { count, bases, lengths };
}

/** The number of addresses in a list of disjoint prefixes (e.g. the output of `mergePrefixes`). */
export function addressCount(disjoint: readonly Prefix[]): number {
  let total = 0;
  for (const prefix of disjoint) total += SIZE_OF_LENGTH[prefix.length] as number;
  return total;
}
