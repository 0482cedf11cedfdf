import { CoverInfeasibleError, ExtraAddressCapError, UsageError } from "../errors.js";
import { formatPrefix, IPV4_BITS, networkOf, type Prefix } from "./ipv4.js";
import { addressCount, mergePrefixes } from "./merge.js";

/**
 * Optimal cover: at most K prefixes that contain every target address with the fewest extra
 * (non-target) addresses. Exact, by a dynamic program over the binary trie of the merged targets:
 *
 *   cost(v, k) = min( size(v) − targets(v)                          (v itself as one rule),
 *                     min over i + j = k of cost(a, i) + cost(b, j)) (split between children a, b)
 *
 * An optimal cover never needs a prefix that is not a merged target or a branching node of that
 * trie: any other prefix covers the same targets as the branching node (or leaf) below it, with
 * more addresses. Unary chains are therefore compressed away, leaving n leaves and n − 1
 * branching nodes; k is bounded by the leaves under each node, which makes the whole program
 * O(n·K) time (tree-knapsack bound) and, as the trie is at most 32 levels deep, O(32·n) memory.
 */

/** The largest budget accepted: far above any registry quota, and a bound on the work we agree to. */
export const MAX_COVER_BUDGET = 2 ** 24;

export interface CoverOptions {
  /** K: the most prefixes the cover may have (a non-negative integer). */
  readonly maxPrefixes: number;
  /** Never emit a prefix shorter than /F (0 … 32; default 0 = no floor). */
  readonly minPrefixLength?: number;
  /** Refuse (ExtraAddressCapError) when the best cover admits more extra addresses than this. */
  readonly maxExtraAddresses?: number;
  /** Refuse when extra addresses / target addresses of the best cover exceeds this ratio. */
  readonly maxExtraRatio?: number;
  /**
   * Prefixes already applied. Among covers of equal cost, the one that keeps more of them wins,
   * so weekly runs do not churn rules. Canonical prefixes, as `parsePrefix` returns them.
   */
  readonly preferred?: readonly Prefix[];
}

export interface Cover {
  /** Canonical, disjoint, sorted by base; at most `maxPrefixes`. */
  readonly prefixes: Prefix[];
  /** The number of prefixes after the lossless merge of the targets. */
  readonly mergedPrefixes: number;
  readonly targetAddresses: number;
  readonly coveredAddresses: number;
  /** coveredAddresses − targetAddresses: the minimum over all covers within the budget. */
  readonly extraAddresses: number;
  /** How many of the output prefixes were in `preferred`. */
  readonly preferredKept: number;
}

function preferredKey(base: number, length: number): number {
  return base * 64 + length;
}

function checkOptions(options: CoverOptions): { budget: number; floor: number } {
  const { maxPrefixes, minPrefixLength = 0, maxExtraAddresses, maxExtraRatio } = options;
  if (!Number.isInteger(maxPrefixes) || maxPrefixes < 0 || maxPrefixes > MAX_COVER_BUDGET) {
    throw new UsageError(
      `The prefix budget must be an integer from 0 to ${MAX_COVER_BUDGET}, not ${String(maxPrefixes)}.`,
      {
        details: { maxPrefixes: String(maxPrefixes) },
      },
    );
  }
  if (!Number.isInteger(minPrefixLength) || minPrefixLength < 0 || minPrefixLength > IPV4_BITS) {
    throw new UsageError(`The minimum prefix length must be an integer from 0 to 32, not ${String(minPrefixLength)}.`, {
      details: { minPrefixLength: String(minPrefixLength) },
    });
  }
  if (maxExtraAddresses !== undefined && !(maxExtraAddresses >= 0)) {
    throw new UsageError(`The cap on extra addresses must be a non-negative number, not ${String(maxExtraAddresses)}.`);
  }
  if (maxExtraRatio !== undefined && !(maxExtraRatio >= 0)) {
    throw new UsageError(
      `The cap on the extra-address ratio must be a non-negative number, not ${String(maxExtraRatio)}.`,
    );
  }
  return { budget: maxPrefixes, floor: minPrefixLength };
}

/**
 * The fewest prefixes of length ≥ F that can cover the merged targets: the number of distinct /F
 * blocks they touch. Every rule of length ≥ F lies inside one /F block, and each touched block
 * can be covered by the block itself. With F = 0 it is 1 (0.0.0.0/0) for any non-empty target.
 */
export function minimumBudget(merged: readonly Prefix[], minPrefixLength: number): number {
  const blockSize = 2 ** (IPV4_BITS - minPrefixLength);
  let count = 0;
  let previousLast = -1;
  for (const prefix of merged) {
    const first = Math.floor(prefix.base / blockSize);
    const last = Math.floor((prefix.base + 2 ** (IPV4_BITS - prefix.length) - 1) / blockSize);
    count += last - first + 1 - (first === previousLast ? 1 : 0);
    previousLast = last;
  }
  return count;
}

/** Splits merged prefixes shorter than the floor into their /F pieces (all needed anyway). */
function splitToFloor(merged: readonly Prefix[], floor: number): Prefix[] {
  const out: Prefix[] = [];
  const pieceSize = 2 ** (IPV4_BITS - floor);
  for (const prefix of merged) {
    if (prefix.length >= floor) {
      out.push(prefix);
      continue;
    }
    const end = prefix.base + 2 ** (IPV4_BITS - prefix.length);
    for (let base = prefix.base; base < end; base += pieceSize) out.push({ base, length: floor });
  }
  return out;
}

/**
 * The compressed trie of sorted disjoint leaves: node ids 0 … n−1 are the leaves, n … 2n−2 the
 * branching nodes; branching node n+i separates leaves i and i+1 at depth clz(base_i ^ base_i+1).
 * It is the Cartesian tree (min depth on top) of those depths, built with a stack in O(n).
 */
interface Trie {
  readonly leafCount: number;
  readonly root: number;
  readonly depth: Uint8Array;
  readonly base: Float64Array;
  readonly left: Int32Array;
  readonly right: Int32Array;
  /** Branching nodes, children before parents. */
  readonly order: Int32Array;
}

function buildTrie(leaves: readonly Prefix[]): Trie {
  const n = leaves.length;
  const nodes = 2 * n - 1;
  const depth = new Uint8Array(nodes);
  const base = new Float64Array(nodes);
  const left = new Int32Array(nodes).fill(-1);
  const right = new Int32Array(nodes).fill(-1);
  for (let index = 0; index < n; index += 1) {
    const leaf = leaves[index] as Prefix;
    depth[index] = leaf.length;
    base[index] = leaf.base;
  }
  const stack = new Int32Array(Math.max(n - 1, 1));
  let top = 0;
  for (let index = 0; index + 1 < n; index += 1) {
    const node = n + index;
    const a = base[index] as number;
    const split = Math.clz32((a ^ (base[index + 1] as number)) >>> 0);
    depth[node] = split;
    base[node] = networkOf(a, split);
    left[node] = index;
    right[node] = index + 1;
    let popped = -1;
    while (top > 0 && (depth[stack[top - 1] as number] as number) > split) {
      top -= 1;
      popped = stack[top] as number;
    }
    if (popped >= 0) left[node] = popped;
    if (top > 0) right[stack[top - 1] as number] = node;
    stack[top] = node;
    top += 1;
  }
  const root = n === 1 ? 0 : (stack[0] as number);
  // Children are strictly deeper than their parent: bucket branching nodes by depth, deepest first.
  const buckets: number[][] = Array.from({ length: IPV4_BITS + 1 }, () => []);
  for (let node = n; node < nodes; node += 1) (buckets[depth[node] as number] as number[]).push(node);
  const order = new Int32Array(Math.max(n - 1, 0));
  let position = 0;
  for (let d = IPV4_BITS; d >= 0; d -= 1) for (const node of buckets[d] as number[]) order[position++] = node;
  return { leafCount: n, root, depth, base, left, right, order };
}

/**
 * Runs the dynamic program and returns the chosen prefixes, sorted by base.
 * Per node v and budget k (1 … cap(v) = min(leaves under v, K)), three typed arrays hold the best
 * cost, the preferred prefixes it keeps, and the choice (−1 = v as one prefix, i = i prefixes to
 * the left child). Ties in cost go to more preferred prefixes, then to v as one prefix, then to
 * the smallest i: a fixed order, so the output depends only on the input sets.
 */
function solve(leaves: readonly Prefix[], budget: number, floor: number, preferred: ReadonlySet<number>): Prefix[] {
  const trie = buildTrie(leaves);
  const { leafCount: n, depth, base, left, right, order } = trie;
  const nodes = 2 * n - 1;
  const targets = new Float64Array(nodes);
  const leavesUnder = new Int32Array(nodes);
  const cap = new Int32Array(nodes);
  const offset = new Int32Array(nodes);
  let total = 0;
  for (let leaf = 0; leaf < n; leaf += 1) {
    targets[leaf] = 2 ** (IPV4_BITS - (depth[leaf] as number));
    leavesUnder[leaf] = 1;
    cap[leaf] = 1;
    offset[leaf] = total;
    total += 1;
  }
  for (const node of order) {
    const a = left[node] as number;
    const b = right[node] as number;
    targets[node] = (targets[a] as number) + (targets[b] as number);
    leavesUnder[node] = (leavesUnder[a] as number) + (leavesUnder[b] as number);
    cap[node] = Math.min(leavesUnder[node], budget);
    offset[node] = total;
    total += cap[node];
  }

  const cost = new Float64Array(total);
  const kept = new Int32Array(total);
  const choice = new Int32Array(total);
  for (let leaf = 0; leaf < n; leaf += 1) {
    const o = offset[leaf] as number;
    cost[o] = 0;
    kept[o] = preferred.has(preferredKey(base[leaf] as number, depth[leaf] as number)) ? 1 : 0;
    choice[o] = -1;
  }
  for (const node of order) {
    const a = left[node] as number;
    const b = right[node] as number;
    const d = depth[node] as number;
    const wholeCost = d >= floor ? 2 ** (IPV4_BITS - d) - (targets[node] as number) : Infinity;
    const wholeKept = wholeCost !== Infinity && preferred.has(preferredKey(base[node] as number, d)) ? 1 : 0;
    const capA = cap[a] as number;
    const capB = cap[b] as number;
    const oa = (offset[a] as number) - 1; // so that budget i of a is at oa + i
    const ob = (offset[b] as number) - 1;
    const o = (offset[node] as number) - 1;
    const capNode = cap[node] as number;
    cost[o + 1] = wholeCost;
    kept[o + 1] = wholeKept;
    choice[o + 1] = -1;
    for (let k = 2; k <= capNode; k += 1) {
      let bestCost = wholeCost;
      let bestKept = wholeKept;
      let bestChoice = -1;
      const low = k - capB > 1 ? k - capB : 1;
      const high = capA < k - 1 ? capA : k - 1;
      for (let i = low; i <= high; i += 1) {
        const c = (cost[oa + i] as number) + (cost[ob + k - i] as number);
        if (c < bestCost) {
          bestCost = c;
          bestKept = (kept[oa + i] as number) + (kept[ob + k - i] as number);
          bestChoice = i;
        } else if (c === bestCost && c !== Infinity) {
          const p = (kept[oa + i] as number) + (kept[ob + k - i] as number);
          if (p > bestKept) {
            bestKept = p;
            bestChoice = i;
          }
        }
      }
      cost[o + k] = bestCost;
      kept[o + k] = bestKept;
      choice[o + k] = bestChoice;
    }
  }

  const result: Prefix[] = [];
  const rootBudget = cap[trie.root] as number;
  // Explicit stack (right pushed before left) so the output comes out sorted by base.
  const stackNode: number[] = [trie.root];
  const stackBudget: number[] = [rootBudget];
  while (stackNode.length > 0) {
    const node = stackNode.pop() as number;
    const k = stackBudget.pop() as number;
    const pick = choice[(offset[node] as number) + k - 1] as number;
    if (pick === -1) {
      result.push({ base: base[node] as number, length: depth[node] as number });
    } else {
      stackNode.push(right[node] as number, left[node] as number);
      stackBudget.push(k - pick, pick);
    }
  }
  return result;
}

/**
 * At most `maxPrefixes` prefixes covering every address of `targets` with the minimum number of
 * extra addresses, under the options above. Deterministic: the same target set (in any order,
 * with any duplicates) and the same preferred set give the same output.
 *
 * Throws `CoverInfeasibleError` (details: `minimumBudget`, `minPrefixLength`, `budget`) when no
 * cover exists under the floor, and `ExtraAddressCapError` (details: `bestExtraAddresses`, the
 * caps) when the best cover breaks a cap.
 */
export function optimalCover(targets: readonly Prefix[], options: CoverOptions): Cover {
  const { budget, floor } = checkOptions(options);
  const merged = mergePrefixes(targets);
  const targetAddresses = addressCount(merged);
  const needed = minimumBudget(merged, floor);
  if (needed > budget) {
    throw new CoverInfeasibleError(
      `No cover of ${merged.length} merged prefixes fits in ${budget} rules with no prefix shorter than /${floor}: at least ${needed} rules are needed.`,
      {
        details: { minimumBudget: needed, minPrefixLength: floor, budget, mergedPrefixes: merged.length },
        remedy: `Allow at least ${needed} rules, lower the minimum prefix length, or select fewer regions.`,
      },
    );
  }
  const leaves = floor > 0 ? splitToFloor(merged, floor) : merged;
  const preferred = new Set<number>();
  for (const prefix of options.preferred ?? []) preferred.add(preferredKey(prefix.base, prefix.length));
  const prefixes = leaves.length <= budget ? leaves.slice() : solve(leaves, budget, floor, preferred);
  const coveredAddresses = addressCount(prefixes);
  const extraAddresses = coveredAddresses - targetAddresses;
  let preferredKept = 0;
  for (const prefix of prefixes) if (preferred.has(preferredKey(prefix.base, prefix.length))) preferredKept += 1;

  const { maxExtraAddresses, maxExtraRatio } = options;
  const ratio = targetAddresses === 0 ? 0 : extraAddresses / targetAddresses;
  if (
    (maxExtraAddresses !== undefined && extraAddresses > maxExtraAddresses) ||
    (maxExtraRatio !== undefined && ratio > maxExtraRatio)
  ) {
    const caps = [
      maxExtraAddresses === undefined ? undefined : `${maxExtraAddresses} addresses`,
      maxExtraRatio === undefined ? undefined : `a ratio of ${maxExtraRatio}`,
    ].filter((cap): cap is string => cap !== undefined);
    throw new ExtraAddressCapError(
      `The best cover in ${budget} rules admits ${extraAddresses} extra addresses (ratio ${ratio.toPrecision(3)} to ${targetAddresses} target addresses), over the cap of ${caps.join(" and ")}.`,
      {
        details: {
          bestExtraAddresses: extraAddresses,
          bestExtraRatio: ratio,
          targetAddresses,
          budget,
          maxExtraAddresses: maxExtraAddresses ?? null,
          maxExtraRatio: maxExtraRatio ?? null,
          widestPrefix: prefixes.length === 0 ? null : formatPrefix(widest(prefixes)),
        },
        remedy: "Allow more rules, raise the cap, or select fewer regions.",
      },
    );
  }
  return { prefixes, mergedPrefixes: merged.length, targetAddresses, coveredAddresses, extraAddresses, preferredKept };
}

function widest(prefixes: readonly Prefix[]): Prefix {
  let best = prefixes[0] as Prefix;
  for (const prefix of prefixes) if (prefix.length < best.length) best = prefix;
  return best;
}
