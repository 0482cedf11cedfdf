/** Levenshtein distance, case-insensitive: `eastu` → `eastus` is 1. */
export function editDistance(a: string, b: string): number {
  const left = a.toLowerCase();
  const right = b.toLowerCase();
  let previous = Array.from({ length: right.length + 1 }, (_, index) => index);
  for (let i = 1; i <= left.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= right.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (left[i - 1] === right[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[right.length] ?? 0;
}

/**
 * The candidates closest to `wanted` by edit distance (ties in candidate order), at most `limit`, and
 * only those close enough to be a plausible typo: within a third of the name's length, at least 2.
 */
export function closestNames(wanted: string, candidates: readonly string[], limit = 3): string[] {
  const bound = Math.max(2, Math.floor(wanted.length / 3));
  return candidates
    .map((name, index) => ({ name, index, distance: editDistance(wanted, name) }))
    .filter((candidate) => candidate.distance <= bound)
    .sort((a, b) => a.distance - b.distance || a.index - b.index)
    .slice(0, limit)
    .map((candidate) => candidate.name);
}
