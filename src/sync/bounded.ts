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
      }
      active.set(key, (active.get(key) ?? 0) + 1);
      try {
        return await task();
      } finally {
        active.set(key, (active.get(key) ?? 1) - 1);
        const next = waiting.get(key)?.shift();
        if (next !== undefined) next();
        else if ((active.get(key) ?? 0) === 0) active.delete(key);
      }
    },
  };
}
