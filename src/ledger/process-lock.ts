import type { LedgerStore, LockHandle } from "./types.js";

/**
 * The file ledger has ONE lock for the whole file (its writes rewrite the file), so several
 * registries of one CLI run could not run side by side. This wraps it for such a run: the file lock
 * is taken once, on the first registry, and held until the last one is done (other processes still
 * wait for it); inside the process each registry has its own mutex and the file's
 * read-modify-writes are serialised. Blob ledgers lease per registry and need none of this.
 */
export function withProcessWideLock(store: LedgerStore): LedgerStore {
  let outer: Promise<LockHandle> | undefined;
  let holders = 0;
  const perRegistry = new Map<string, Promise<void>>();
  let tail: Promise<unknown> = Promise.resolve();
  const serialised = <T>(work: () => Promise<T>): Promise<T> => {
    const next = tail.then(work, work);
    tail = next.catch(() => undefined);
    return next;
  };

  return {
    read: (registryId) => serialised(() => store.read(registryId)),
    write: (state) => serialised(() => store.write(state)),
    appendAudit: (entry) => serialised(() => store.appendAudit(entry)),
    listAudit: (registryId) => serialised(() => store.listAudit(registryId)),
    readFreeze: (registryId) => serialised(() => store.readFreeze(registryId)),
    writeFreeze: (registryId, freeze) => serialised(() => store.writeFreeze(registryId, freeze)),
    async acquireLock(registryId, options) {
      const key = registryId.toLowerCase();
      const previous = perRegistry.get(key) ?? Promise.resolve();
      let done!: () => void;
      const mine = new Promise<void>((resolve) => (done = resolve));
      perRegistry.set(
        key,
        previous.then(() => mine),
      );
      await previous;
      holders += 1;
      try {
        outer ??= store.acquireLock(registryId, options);
        await outer;
      } catch (error) {
        holders -= 1;
        outer = undefined;
        done();
        throw error;
      }
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          holders -= 1;
          done();
          if (holders === 0 && outer !== undefined) {
            const held = outer;
            outer = undefined;
            await (await held).release();
          }
        },
      };
    },
  };
}
