import { InvalidPrefixError } from "../errors.js";
import { IPV4_BITS, IPV4_SPACE, type Prefix } from "./ipv4.js";

// A prefix packed into one double: base * 64 + length (< 2^38, exact). Sorting these numbers sorts
// by base, then shorter (larger) prefixes first, with the engine's native typed-array sort.
const LENGTH_SLOTS = 64;

/**
 * Appends to `out` the minimal list of aligned blocks that exactly covers [start, end): at each
 * step the largest block that is aligned at `start` and fits. The decomposition of a range is
 * unique and minimal, so doing it per maximal range gives the minimal list of the whole union.
 */
export function appendRangeAsPrefixes(start: number, end: number, out: Prefix[]): void {
  let cursor = start;
  while (cursor < end) {
    // Lowest set bit of cursor = the largest block aligned at cursor (2^32 when cursor is 0).
    let size = cursor === 0 ? 2 ** IPV4_BITS : (cursor & -cursor) >>> 0;
    const room = end - cursor;
    while (size > room) size /= 2;
    const length = size === 2 ** IPV4_BITS ? 0 : Math.clz32(size) + 1;
    out.push({ base: cursor, length });
    cursor += size;
  }
}

/**
 * Lossless merge: the minimal exact CIDR list of the union of `prefixes` (overlaps removed,
 * adjacent blocks combined into the largest aligned blocks), sorted by base. Input prefixes must
 * be canonical (no host bits set), as `parsePrefix` returns them. O(n log n), on plain numbers.
 */
export function mergePrefixes(prefixes: readonly Prefix[]): Prefix[] {
  const count = prefixes.length;
  const packed = new Float64Array(count);
  for (let index = 0; index < count; index += 1) {
    const { base, length } = prefixes[index] as Prefix;
    // A non-canonical prefix here is a caller's bug; merging it anyway would move addresses.
    if (!(
      Number.isInteger(length) &&
      length >= 0 &&
      length <= IPV4_BITS &&
      Number.isInteger(base) &&
      base >= 0 &&
      base < IPV4_SPACE &&
      base % 2 ** (IPV4_BITS - length) === 0
    )) {
      throw new InvalidPrefixError(
        `{ base: ${String(base)}, length: ${String(length)} } is not a canonical IPv4 prefix.`,
        {
          details: { base: String(base), length: String(length), reason: "not-canonical" },
          remedy: "Build prefixes with parsePrefix.",
        },
      );
    }
    packed[index] = base * LENGTH_SLOTS + length;
  }
  packed.sort();
  const out: Prefix[] = [];
  let runStart = -1;
  let runEnd = -1;
  for (let index = 0; index < count; index += 1) {
    const key = packed[index] as number;
    const base = Math.floor(key / LENGTH_SLOTS);
    const length = key - base * LENGTH_SLOTS;
    const end = base + 2 ** (IPV4_BITS - length);
    if (base <= runEnd) {
      // Overlapping or touching the current run (touching merges too: [a,b) + [b,c) = [a,c)).
      if (end > runEnd) runEnd = end;
    } else {
      if (runStart >= 0) appendRangeAsPrefixes(runStart, runEnd, out);
      runStart = base;
      runEnd = end;
    }
  }
  if (runStart >= 0) appendRangeAsPrefixes(runStart, runEnd, out);
  return out;
}

/** The number of addresses in a list of disjoint prefixes (e.g. the output of `mergePrefixes`). */
export function addressCount(disjoint: readonly Prefix[]): number {
  let total = 0;
  for (const prefix of disjoint) total += 2 ** (IPV4_BITS - prefix.length);
  return total;
}
