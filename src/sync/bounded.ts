/**
 * Runs `work` over `items` with at most `concurrency` at a time and at most `perKey` at a time
 * for items of the same key (registries of one subscription: ARM's throttling buckets are per
 * subscription, azure-facts §9). Items start in order, skipping over ones whose key is full.
 * `work` must not throw (each registry's failure is its own outcome); if it does, the first error
 * is rethrown once every started item has finished.
 */
export async function forEachBounded<T>(
  items: readonly T[],
  limits: { readonly concurrency: number; readonly perKey: number; readonly keyOf: (item: T) => string },
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  const concurrency = Math.max(1, Math.floor(limits.concurrency));
  const perKey = Math.max(1, Math.floor(limits.perKey));
  const waiting = items.map((item, index) => ({ item, index, key: limits.keyOf(item) }));
  const running = new Map<string, number>();
  let active = 0;
  let firstError: { error: unknown } | undefined;

  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (active < concurrency && firstError === undefined) {
        const next = waiting.findIndex((entry) => (running.get(entry.key) ?? 0) < perKey);
        if (next < 0) break;
        const [entry] = waiting.splice(next, 1);
        if (entry === undefined) break;
        active += 1;
        running.set(entry.key, (running.get(entry.key) ?? 0) + 1);
        void work(entry.item, entry.index)
          .catch((error: unknown) => {
            firstError ??= { error };
          })
          .finally(() => {
            active -= 1;
            running.set(entry.key, (running.get(entry.key) ?? 1) - 1);
            pump();
          });
      }
      if (active === 0 && (waiting.length === 0 || firstError !== undefined)) resolve();
    };
    pump();
  });
  if (firstError !== undefined) throw firstError.error;
}

/** At most `perKey` tasks of one key at a time, process-wide (queue messages arrive one by one, not as a list). */
export interface KeyedLimiter {
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
}

export function createKeyedLimiter(perKey: number): KeyedLimiter {
  const limit = Math.max(1, Math.floor(perKey));
  const active = new Map<string, number>();
  const waiting = new Map<string, (() => void)[]>();
  return {
    async run(key, task) {
      if ((active.get(key) ?? 0) >= limit) {
        await new Promise<void>((resolve) => {
          const queue = waiting.get(key) ?? [];
          queue.push(resolve);
          waiting.set(key, queue);
        });
      } else active.set(key, (active.get(key) ?? 0) + 1);
      try {
        return await task();
      } finally {
        // The slot passes straight to the next waiter (its count stays taken), so a task arriving
        // between this release and the waiter's resumption cannot slip in above the cap.
        const next = waiting.get(key)?.shift();
        if (next !== undefined) next();
        else {
          const left = (active.get(key) ?? 1) - 1;
          if (left <= 0) {
            active.delete(key);
            waiting.delete(key);
          } else active.set(key, left);
        }
      }
    },
  };
}

/**
 * `items` reordered round-robin over their keys (first of each key, then second of each, …),
 * each key's items in their original order. A queue consumer takes messages in roughly the
 * order they were sent: sent grouped by subscription, one instance's batch would be a single
 * subscription's registries, and all but SYNC_MAX_PER_SUBSCRIPTION of them would wait for the
 * per-subscription cap while the other subscriptions' buckets sat unused.
 */
export function interleaveByKey<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [item]);
    else group.push(item);
  }
  const lists = [...groups.values()];
  const out: T[] = [];
  for (let round = 0; out.length < items.length; round += 1)
    for (const list of lists) {
      const item = list[round];
      if (item !== undefined) out.push(item);
    }
  return out;
}
