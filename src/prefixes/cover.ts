import { CoverInfeasibleError, ExtraAddressCapError, UsageError } from "../errors.js";
import { formatPrefix, IPV4_BITS, networkOf, SIZE_OF_LENGTH, type Prefix } from "./ipv4.js";
import {
  arraysOf,
  canonicalArrays,
  isMergedList,
  mergedToPrefixes,
  mergePrefixArrays,
  prefixesOf,
  type PrefixArrays,
} from "./merge.js";

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

/** The largest budget accepted: far above any registry quota. */
export const MAX_COVER_BUDGET = 2 ** 24;

/**
 * The most work a cover may take: leaves × budget, the bound on the DP's cells (each is one
 * addition and one comparison). 2·10^9 cells is about 3 s at the bench's 1.5 ns per cell; past
 * it (1,000,000 prefixes to 500,000 rules was 15 minutes) the cover is refused at once, with the
 * figure, rather than run. No work is done when the merged prefixes already fit the budget.
 */
export const MAX_COVER_WORK = 2_000_000_000;

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
  readonly prefixes: readonly Prefix[];
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
  return minimumBudgetOf(arraysOf(merged), minPrefixLength);
}

function minimumBudgetOf(merged: PrefixArrays, minPrefixLength: number): number {
  const blockSize = SIZE_OF_LENGTH[minPrefixLength] as number;
  const { count: n, bases, lengths } = merged;
  let count = 0;
  let previousLast = -1;
  for (let index = 0; index < n; index += 1) {
    const base = bases[index] as number;
    const first = Math.floor(base / blockSize);
    const last = Math.floor((base + (SIZE_OF_LENGTH[lengths[index] as number] as number) - 1) / blockSize);
    count += last - first + 1 - (first === previousLast ? 1 : 0);
    previousLast = last;
  }
  return count;
}

function addressCountOf(prefixes: PrefixArrays): number {
  let total = 0;
  for (let index = 0; index < prefixes.count; index += 1)
    total += SIZE_OF_LENGTH[prefixes.lengths[index] as number] as number;
  return total;
}

/** Splits merged prefixes shorter than the floor into their /F pieces (all needed anyway). */
function splitToFloor(merged: PrefixArrays, floor: number): PrefixArrays {
  const { count, bases, lengths } = merged;
  let pieces = 0;
  for (let index = 0; index < count; index += 1) {
    const length = lengths[index] as number;
    pieces += length >= floor ? 1 : (SIZE_OF_LENGTH[length] as number) / (SIZE_OF_LENGTH[floor] as number);
  }
  if (pieces === count) return merged;
  const outBases = new Uint32Array(pieces);
  const outLengths = new Uint8Array(pieces);
  const pieceSize = SIZE_OF_LENGTH[floor] as number;
  let at = 0;
  for (let index = 0; index < count; index += 1) {
    const base = bases[index] as number;
    const length = lengths[index] as number;
    if (length >= floor) {
      outBases[at] = base;
      outLengths[at++] = length;
      continue;
    }
    const end = base + (SIZE_OF_LENGTH[length] as number);
    for (let piece = base; piece < end; piece += pieceSize) {
      outBases[at] = piece;
      outLengths[at++] = floor;
    }
  }
  return { count: pieces, bases: outBases, lengths: outLengths };
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

function buildTrie(leaves: PrefixArrays): Trie {
  const n = leaves.count;
  const nodes = 2 * n - 1;
  const depth = new Uint8Array(nodes);
  const base = new Float64Array(nodes);
  const left = new Int32Array(nodes).fill(-1);
  const right = new Int32Array(nodes).fill(-1);
  depth.set(leaves.lengths.subarray(0, n));
  base.set(leaves.bases.subarray(0, n));
  const root = n === 1 ? 0 : linkBranches(n, depth, base, left, right);
  return { leafCount: n, root, depth, base, left, right, order: postOrder(n, root, left, right) };
}

/** The Cartesian-tree stack pass: fills the branching nodes n … 2n − 2 and returns the root. */
function linkBranches(n: number, depth: Uint8Array, base: Float64Array, left: Int32Array, right: Int32Array): number {
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
  return stack[0] as number;
}

/**
 * Branching nodes in post-order (children before parents, each subtree finished before the next):
 * a node's children were filled just before it, and big nodes come early, so the optimiser has
 * seen every path of `fillNode` before it compiles it (a depth-by-depth order ran thousands of
 * tiny nodes first, and the compiled kernel was thrown away twice on the first big node).
 */
function postOrder(n: number, root: number, left: Int32Array, right: Int32Array): Int32Array {
  const order = new Int32Array(Math.max(n - 1, 0));
  if (n <= 1) return order;
  const pending = new Int32Array(n);
  const expanded = new Uint8Array(2 * n - 1);
  let position = 0;
  let size = 0;
  pending[size++] = root;
  while (size > 0) {
    const node = pending[size - 1] as number;
    if (expanded[node] === 1) {
      size -= 1;
      order[position++] = node;
      continue;
    }
    expanded[node] = 1;
    const r = right[node] as number;
    const l = left[node] as number;
    if (r >= n) pending[size++] = r;
    if (l >= n) pending[size++] = l;
  }
  return order;
}

/** Per node: target addresses under it, its budget cap and where its cells start in `cost`. */
interface Layout {
  readonly targets: Float64Array;
  readonly cap: Int32Array;
  /** Budget k of node v is cell offset[v] + k − 1. */
  readonly offset: Int32Array;
  readonly total: number;
}

function layoutOf(trie: Trie, budget: number): Layout {
  const { leafCount: n, depth } = trie;
  const nodes = 2 * n - 1;
  const targets = new Float64Array(nodes);
  const leavesUnder = new Int32Array(nodes);
  const cap = new Int32Array(nodes);
  const offset = new Int32Array(nodes);
  for (let leaf = 0; leaf < n; leaf += 1) {
    targets[leaf] = SIZE_OF_LENGTH[depth[leaf] as number] as number;
    leavesUnder[leaf] = 1;
    cap[leaf] = 1;
    offset[leaf] = leaf;
  }
  const total = layoutBranches(trie, budget, targets, leavesUnder, cap, offset);
  return { targets, cap, offset, total };
}

/** Sums and caps of the branching nodes, children first; returns the number of cells. */
function layoutBranches(
  trie: Trie,
  budget: number,
  targets: Float64Array,
  leavesUnder: Int32Array,
  cap: Int32Array,
  offset: Int32Array,
): number {
  const { leafCount: n, left, right, order } = trie;
  let total = n;
  // eslint-disable-next-line @typescript-eslint/prefer-for-of -- an index loop: the iterator protocol costs more per step until the loop is compiled
  for (let position = 0; position < order.length; position += 1) {
    const node = order[position] as number;
    const a = left[node] as number;
    const b = right[node] as number;
    targets[node] = (targets[a] as number) + (targets[b] as number);
    const under = (leavesUnder[a] as number) + (leavesUnder[b] as number);
    leavesUnder[node] = under;
    const c = under < budget ? under : budget;
    cap[node] = c;
    offset[node] = total;
    total += c;
  }
  return total;
}

function wholeCostOf(trie: Trie, layout: Layout, floor: number, node: number): number {
  const d = trie.depth[node] as number;
  return d >= floor ? (SIZE_OF_LENGTH[d] as number) - (layout.targets[node] as number) : Infinity;
}

/**
 * Runs the dynamic program and returns the chosen prefixes, sorted by base.
 * Per node v and budget k (1 … cap(v) = min(leaves under v, K)), typed arrays hold the best cost
 * and, with preferred prefixes only, the preferred prefixes it keeps and the choice (−1 = v as one
 * prefix, i = i prefixes to the left child). Ties in cost go to more preferred prefixes, then to v
 * as one prefix, then to the smallest i: a fixed order, so the output depends only on the input sets.
 *
 * Each loop is its own small function: the optimiser compiles a running loop on the spot (OSR),
 * and code after the loop that had not run yet would throw that compiled code away again.
 */
function solve(leaves: PrefixArrays, budget: number, floor: number, preferred: ReadonlySet<number>): PrefixArrays {
  const trie = buildTrie(leaves);
  const layout = layoutOf(trie, budget);
  // Leaves cost 0: the array starts zeroed.
  const cost = new Float64Array(layout.total);
  if (preferred.size === 0) {
    fillAll(trie, layout, floor, cost);
    return traceback(trie, layout, budget, (node, k) => {
      const a = trie.left[node] as number;
      const b = trie.right[node] as number;
      const { offset, cap } = layout;
      return splitOf(
        cost,
        (offset[a] as number) - 1,
        (offset[b] as number) - 1,
        cap[a] as number,
        cap[b] as number,
        k,
        cost[(offset[node] as number) + k - 1] as number,
        wholeCostOf(trie, layout, floor, node),
      );
    });
  }
  const kept = new Int32Array(layout.total);
  const choice = new Int32Array(layout.total);
  fillAllPreferring(trie, layout, floor, preferred, cost, kept, choice);
  return traceback(trie, layout, budget, (node, k) => choice[(layout.offset[node] as number) + k - 1] as number);
}

function fillAll(trie: Trie, layout: Layout, floor: number, cost: Float64Array): void {
  const { left, right, order } = trie;
  const { cap, offset } = layout;
  // eslint-disable-next-line @typescript-eslint/prefer-for-of -- an index loop: the iterator protocol costs more per step until the loop is compiled
  for (let position = 0; position < order.length; position += 1) {
    const node = order[position] as number;
    const a = left[node] as number;
    const b = right[node] as number;
    const wholeCost = wholeCostOf(trie, layout, floor, node);
    // Offsets shifted by one, so that budget i of a node is at its offset + i.
    fillNode(
      cost,
      (offset[a] as number) - 1,
      (offset[b] as number) - 1,
      (offset[node] as number) - 1,
      cap[a] as number,
      cap[b] as number,
      cap[node] as number,
      wholeCost,
    );
  }
}

function fillAllPreferring(
  trie: Trie,
  layout: Layout,
  floor: number,
  preferred: ReadonlySet<number>,
  cost: Float64Array,
  kept: Int32Array,
  choice: Int32Array,
): void {
  const { leafCount: n, left, right, depth, base, order } = trie;
  const { cap, offset } = layout;
  for (let leaf = 0; leaf < n; leaf += 1) {
    const o = offset[leaf] as number;
    choice[o] = -1;
    kept[o] = preferred.has(preferredKey(base[leaf] as number, depth[leaf] as number)) ? 1 : 0;
  }
  // eslint-disable-next-line @typescript-eslint/prefer-for-of -- an index loop: the iterator protocol costs more per step until the loop is compiled
  for (let position = 0; position < order.length; position += 1) {
    const node = order[position] as number;
    const a = left[node] as number;
    const b = right[node] as number;
    const wholeCost = wholeCostOf(trie, layout, floor, node);
    const wholeKept =
      wholeCost !== Infinity && preferred.has(preferredKey(base[node] as number, depth[node] as number)) ? 1 : 0;
    fillNodePreferring(
      cost,
      kept,
      choice,
      (offset[a] as number) - 1,
      (offset[b] as number) - 1,
      (offset[node] as number) - 1,
      cap[a] as number,
      cap[b] as number,
      cap[node] as number,
      { cost: wholeCost, kept: wholeKept },
    );
  }
}

/** The chosen prefixes, sorted by base: from the root, follow `splitAt(node, k)` (−1 = v whole). */
function traceback(
  trie: Trie,
  layout: Layout,
  budget: number,
  splitAt: (node: number, k: number) => number,
): PrefixArrays {
  const { leafCount: n, base, depth, left, right } = trie;
  const outBases = new Uint32Array(budget);
  const outLengths = new Uint8Array(budget);
  let written = 0;
  // Explicit stack (right pushed before left) so the output comes out sorted by base.
  const stackNode: number[] = [trie.root];
  const stackBudget: number[] = [layout.cap[trie.root] as number];
  while (stackNode.length > 0) {
    const node = stackNode.pop() as number;
    const k = stackBudget.pop() as number;
    const pick = node < n ? -1 : splitAt(node, k);
    if (pick === -1) {
      outBases[written] = base[node] as number;
      outLengths[written] = depth[node] as number;
      written += 1;
    } else {
      stackNode.push(right[node] as number, left[node] as number);
      stackBudget.push(k - pick, pick);
    }
  }
  return { count: written, bases: outBases.subarray(0, written), lengths: outLengths.subarray(0, written) };
}

/**
 * The split `fillNode` chose for budget k of a node whose best cost is `best`: v as one prefix
 * (−1) when that costs `best`, else the smallest i that does. Costs are integers below 2^53, so
 * the sums are exact and equality finds the same split as the DP's strict `<` in ascending i.
 * The traceback follows at most 2K splits, so finding them again costs at most 2K² steps, against
 * the N·K cells that no longer store a choice.
 */
function splitOf(
  cost: Float64Array,
  oa: number,
  ob: number,
  capA: number,
  capB: number,
  k: number,
  best: number,
  wholeCost: number,
): number {
  if (wholeCost === best) return -1;
  const low = k - capB > 1 ? k - capB : 1;
  const high = capA < k - 1 ? capA : k - 1;
  for (let i = low; i <= high; i += 1) {
    if ((cost[oa + i] as number) + (cost[ob + k - i] as number) === best) return i;
  }
  throw new Error(`cover traceback: no split of budget ${k} costs ${best}`);
}

/**
 * One node of the DP without preferred prefixes: for k = 1 … capNode, the cheapest of v as one
 * prefix (cost `wholeCost`) and every split i + (k − i) between the children a and b. Only the
 * cost is kept; `splitOf` finds the split again for the nodes the traceback visits.
 *
 * The hottest loop of the program, so it is its own function (the optimiser compiles it alone,
 * every value a local) and computes budgets k … k + 3 together: all read a at i, and b at
 * k − i is b at (k + 1) − (i + 1), so each step loads two numbers for four cells instead of eight.
 */
function fillNode(
  cost: Float64Array,
  oa: number,
  ob: number,
  o: number,
  capA: number,
  capB: number,
  capNode: number,
  wholeCost: number,
): void {
  cost[o + 1] = wholeCost;
  let k = 2;
  for (; k + 3 <= capNode; k += 4) {
    let best0 = wholeCost;
    let best1 = wholeCost;
    let best2 = wholeCost;
    let best3 = wholeCost;
    // Budget k + t may split at i = low(k + t) … high(k + t); together allLow … highTop.
    const allLow = k - capB > 1 ? k - capB : 1;
    const highTop = capA < k + 2 ? capA : k + 2;
    // Pruning. Costs do not grow with the budget (at most k prefixes), so f(k − 1) bounds the
    // four cells from above, and a split i costs at least A(i) + min B and at least min A + B(j)
    // for the smallest j it may take. A falls as i grows and B(j) rises: the splits that cannot
    // beat the bound are a prefix and a suffix of i, found by bisection. Skipping them leaves the
    // minimum exact (one that equals the bound is the bound, taken below).
    let from = allLow;
    let to = highTop;
    const upper = cost[o + k - 1] as number;
    if (upper !== Infinity) {
      const limitA = upper - (cost[ob + (capB < k + 2 ? capB : k + 2)] as number);
      let hi = highTop + 1;
      while (from < hi) {
        const mid = (from + hi) >> 1;
        if ((cost[oa + mid] as number) < limitA) hi = mid;
        else from = mid + 1;
      }
      const limitB = upper - (cost[oa + highTop] as number);
      let lo = from - 1;
      while (lo < to) {
        const mid = (lo + to + 1) >> 1;
        const j = k + 3 - mid;
        if ((cost[ob + (j < capB ? j : capB)] as number) < limitB) lo = mid;
        else to = mid - 1;
      }
    }
    // The shared range of all four budgets is lowS … highS.
    const lowS = k + 3 - capB > 1 ? k + 3 - capB : 1;
    const highS = capA < k - 1 ? capA : k - 1;
    // Below the shared range: budgets k … k + 2 only.
    const belowEnd = lowS - 1 < to ? lowS - 1 : to;
    for (let i = from; i <= belowEnd; i += 1) {
      const fromA = cost[oa + i] as number;
      if (i <= k - 1 && i >= k - capB) {
        const c = fromA + (cost[ob + k - i] as number);
        if (c < best0) best0 = c;
      }
      if (i <= k && i >= k + 1 - capB) {
        const c = fromA + (cost[ob + k + 1 - i] as number);
        if (c < best1) best1 = c;
      }
      if (i <= k + 1 && i >= k + 2 - capB) {
        const c = fromA + (cost[ob + k + 2 - i] as number);
        if (c < best2) best2 = c;
      }
    }
    const sharedStart = lowS > from ? lowS : from;
    const sharedEnd = highS < to ? highS : to;
    if (sharedStart <= sharedEnd) {
      BEST[0] = best0;
      BEST[1] = best1;
      BEST[2] = best2;
      BEST[3] = best3;
      scanShared(cost, oa + sharedStart, oa + sharedEnd, ob + k - sharedStart);
      best0 = BEST[0];
      best1 = BEST[1];
      best2 = BEST[2];
      best3 = BEST[3];
    }
    // Above the shared range: budgets k + 1 … k + 3 only.
    const aboveStart = highS + 1 > sharedStart ? highS + 1 : sharedStart;
    for (let i = aboveStart; i <= to; i += 1) {
      const fromA = cost[oa + i] as number;
      if (i <= k && i >= k + 1 - capB) {
        const c = fromA + (cost[ob + k + 1 - i] as number);
        if (c < best1) best1 = c;
      }
      if (i <= k + 1 && i >= k + 2 - capB) {
        const c = fromA + (cost[ob + k + 2 - i] as number);
        if (c < best2) best2 = c;
      }
      if (i <= k + 2 && i >= k + 3 - capB) {
        const c = fromA + (cost[ob + k + 3 - i] as number);
        if (c < best3) best3 = c;
      }
    }
    if (upper < best0) best0 = upper;
    if (best0 < best1) best1 = best0;
    if (best1 < best2) best2 = best1;
    if (best2 < best3) best3 = best2;
    cost[o + k] = best0;
    cost[o + k + 1] = best1;
    cost[o + k + 2] = best2;
    cost[o + k + 3] = best3;
  }
  for (; k <= capNode; k += 1) {
    let best = wholeCost;
    const low = k - capB > 1 ? k - capB : 1;
    const high = capA < k - 1 ? capA : k - 1;
    for (let i = low; i <= high; i += 1) {
      const c = (cost[oa + i] as number) + (cost[ob + k - i] as number);
      if (c < best) best = c;
    }
    cost[o + k] = best;
  }
}

/** The four running minimums `scanShared` reads and writes (one thread: one scratch array). */
const BEST = new Float64Array(4);

/**
 * The shared range of four budgets: a at x … last, b at y, y + 1, y + 2, y + 3 going down.
 * Its own small function: it is compiled after a few calls and every long scan runs compiled;
 * inside `fillNode` the first long scan ran uncompiled until the whole kernel was.
 */
function scanShared(cost: Float64Array, x: number, last: number, y: number): void {
  let best0 = BEST[0] as number;
  let best1 = BEST[1] as number;
  let best2 = BEST[2] as number;
  let best3 = BEST[3] as number;
  let b1 = cost[y + 1] as number;
  let b2 = cost[y + 2] as number;
  let b3 = cost[y + 3] as number;
  for (; x <= last; x += 1, y -= 1) {
    const b0 = cost[y] as number;
    const fromA = cost[x] as number;
    const c0 = fromA + b0;
    if (c0 < best0) best0 = c0;
    const c1 = fromA + b1;
    if (c1 < best1) best1 = c1;
    const c2 = fromA + b2;
    if (c2 < best2) best2 = c2;
    const c3 = fromA + b3;
    if (c3 < best3) best3 = c3;
    b3 = b2;
    b2 = b1;
    b1 = b0;
  }
  BEST[0] = best0;
  BEST[1] = best1;
  BEST[2] = best2;
  BEST[3] = best3;
}

/** `fillNode` with the tie-break on preferred prefixes: among equal costs, the most kept wins. */
function fillNodePreferring(
  cost: Float64Array,
  kept: Int32Array,
  choice: Int32Array,
  oa: number,
  ob: number,
  o: number,
  capA: number,
  capB: number,
  capNode: number,
  whole: { readonly cost: number; readonly kept: number },
): void {
  cost[o + 1] = whole.cost;
  kept[o + 1] = whole.kept;
  choice[o + 1] = -1;
  for (let k = 2; k <= capNode; k += 1) {
    let bestCost = whole.cost;
    let bestKept = whole.kept;
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

/** A cover with its prefixes in typed arrays (`coverOfMerged`). */
export interface ArrayCover extends Omit<Cover, "prefixes"> {
  readonly prefixes: PrefixArrays;
}

/**
 * At most `maxPrefixes` prefixes covering every address of `targets` with the minimum number of
 * extra addresses, under the options above. Deterministic: the same target set (in any order,
 * with any duplicates) and the same preferred set give the same output. A list `mergePrefixes`
 * returned is taken as it is (not merged again).
 *
 * Throws `CoverInfeasibleError` (details: `minimumBudget`, `minPrefixLength`, `budget`) when no
 * cover exists under the floor, `ExtraAddressCapError` (details: `bestExtraAddresses`, the caps)
 * when the best cover breaks a cap, and `UsageError` (details: `work`, `maxWork`) when the cover
 * would take more than `MAX_COVER_WORK`.
 */
export function optimalCover(targets: readonly Prefix[], options: CoverOptions): Cover {
  // Straight to typed arrays: no object per merged prefix unless it is in the output.
  const given = isMergedList(targets);
  const mergedArrays = given ? arraysOf(targets) : mergePrefixArrays(canonicalArrays(targets));
  const cover = coverOfMerged(mergedArrays, options);
  const prefixes =
    cover.prefixes !== mergedArrays ? prefixesOf(cover.prefixes) : given ? targets : mergedToPrefixes(mergedArrays);
  return { ...cover, prefixes };
}

/**
 * `optimalCover` on the lossless merge of the targets, held in typed arrays (`mergePrefixArrays`):
 * the path of the million-prefix files, with no object per prefix. When everything fits, the
 * returned prefixes are `merged` itself.
 */
export function coverOfMerged(merged: PrefixArrays, options: CoverOptions): ArrayCover {
  const { budget, floor } = checkOptions(options);
  const mergedPrefixes = merged.count;
  const targetAddresses = addressCountOf(merged);
  const needed = minimumBudgetOf(merged, floor);
  if (needed > budget) {
    throw new CoverInfeasibleError(
      `No cover of ${mergedPrefixes} merged prefixes fits in ${budget} rules with no prefix shorter than /${floor}: at least ${needed} rules are needed.`,
      {
        details: { minimumBudget: needed, minPrefixLength: floor, budget, mergedPrefixes },
        remedy: `Allow at least ${needed} rules, lower the minimum prefix length, or select fewer regions.`,
      },
    );
  }
  const leaves = floor > 0 ? splitToFloor(merged, floor) : merged;
  if (leaves.count > budget) checkWork(leaves.count, mergedPrefixes, budget);
  const preferred = new Set<number>();
  for (const prefix of options.preferred ?? []) preferred.add(preferredKey(prefix.base, prefix.length));
  // Everything fits: the merge (or its split to the floor) is the cover, with no extra address.
  const prefixes = leaves.count <= budget ? leaves : solve(leaves, budget, floor, preferred);
  const coveredAddresses = prefixes === leaves ? targetAddresses : addressCountOf(prefixes);
  const extraAddresses = coveredAddresses - targetAddresses;
  let preferredKept = 0;
  if (preferred.size > 0) {
    for (let index = 0; index < prefixes.count; index += 1) {
      if (preferred.has(preferredKey(prefixes.bases[index] as number, prefixes.lengths[index] as number)))
        preferredKept += 1;
    }
  }

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
          widestPrefix: prefixes.count === 0 ? null : formatPrefix(widest(prefixes)),
        },
        remedy: "Allow more rules, raise the cap, or select fewer regions.",
      },
    );
  }
  return { prefixes, mergedPrefixes, targetAddresses, coveredAddresses, extraAddresses, preferredKept };
}

/** Refuses a cover over `MAX_COVER_WORK` before any of it is done (operator contract: bounded work). */
function checkWork(leaves: number, mergedPrefixes: number, budget: number): void {
  const work = leaves * budget;
  if (work <= MAX_COVER_WORK) return;
  const number = (value: number): string => value.toLocaleString("en-US");
  const largestBudget = Math.floor(MAX_COVER_WORK / leaves);
  throw new UsageError(
    `A cover of ${number(leaves)} prefixes${leaves === mergedPrefixes ? "" : ` (${number(mergedPrefixes)} merged, split to the floor)`} in ${number(budget)} rules is ${number(work)} units of work (prefixes × rules), over the bound of ${number(MAX_COVER_WORK)}.`,
    {
      details: { work, maxWork: MAX_COVER_WORK, leaves, mergedPrefixes, budget, largestBudget },
      remedy:
        largestBudget >= 1
          ? `Allow at most ${number(largestBudget)} rules, or at least ${number(leaves)} (no cover is needed then), or select fewer prefixes.`
          : `Allow at least ${number(leaves)} rules (no cover is needed then), or select fewer prefixes.`,
    },
  );
}

function widest(prefixes: PrefixArrays): Prefix {
  let best = 0;
  for (let index = 1; index < prefixes.count; index += 1) {
    if ((prefixes.lengths[index] as number) < (prefixes.lengths[best] as number)) best = index;
  }
  return { base: prefixes.bases[best] as number, length: prefixes.lengths[best] as number };
}
