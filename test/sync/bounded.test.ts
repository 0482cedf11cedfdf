import { describe, expect, it } from "vitest";
import { createKeyedLimiter, forEachBounded, interleaveByKey } from "../../src/sync/bounded.js";

/** The scheduler under the CLI's --concurrency and the in-process timer: limits hold, every item runs once. */

async function observe(items: readonly string[], concurrency: number, perKey: number) {
  let active = 0;
  let peak = 0;
  const activeByKey = new Map<string, number>();
  let peakPerKey = 0;
  const ran: number[] = [];
  await forEachBounded(items, { concurrency, perKey, keyOf: (item) => item }, async (item, index) => {
    active += 1;
    activeByKey.set(item, (activeByKey.get(item) ?? 0) + 1);
    peak = Math.max(peak, active);
    peakPerKey = Math.max(peakPerKey, activeByKey.get(item) ?? 0);
    // Yield a few times so other items get the chance to overlap.
    for (let i = 0; i < 3; i += 1) await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    ran.push(index);
    active -= 1;
    activeByKey.set(item, (activeByKey.get(item) ?? 1) - 1);
  });
  return { peak, peakPerKey, ran };
}

describe("forEachBounded", () => {
  it("runs every item once, at most `concurrency` at a time and at most `perKey` of one key", async () => {
    const items = Array.from({ length: 60 }, (_, i) => `sub${i % 3}`);
    const { peak, peakPerKey, ran } = await observe(items, 8, 2);
    expect(ran.slice().sort((a, b) => a - b)).toEqual(items.map((_, i) => i));
    expect(peak).toBe(6);
    expect(peakPerKey).toBe(2);
  });

  it("runs one at a time with concurrency 1", async () => {
    const { peak, ran } = await observe(["a", "b", "c"], 1, 5);
    expect(peak).toBe(1);
    expect(ran).toEqual([0, 1, 2]);
  });

  it("finishes the started items and then rethrows the first error", async () => {
    const finished: number[] = [];
    const run = forEachBounded([1, 2, 3, 4], { concurrency: 2, perKey: 2, keyOf: () => "k" }, async (item) => {
      await new Promise((resolve) => setImmediate(resolve));
      if (item === 1) throw new Error("boom");
      finished.push(item);
    });
    await expect(run).rejects.toThrow("boom");
    expect(finished).toContain(2);
    expect(finished).not.toContain(4);
  });

  it("resolves at once for no items", async () => {
    await expect(
      forEachBounded([], { concurrency: 2, perKey: 1, keyOf: String }, () => Promise.resolve()),
    ).resolves.toBeUndefined();
  });
});

describe("interleaveByKey", () => {
  it("deals the items round-robin over their keys, each key's items in their order", () => {
    const items = ["a1", "a2", "a3", "b1", "c1", "c2"];
    expect(interleaveByKey(items, (item) => item.slice(0, 1))).toEqual(["a1", "b1", "c1", "a2", "c2", "a3"]);
  });

  it("keeps every item exactly once", () => {
    const items = Array.from({ length: 1000 }, (_, i) => `s${Math.floor(i / 50)}:${i}`);
    const out = interleaveByKey(items, (item) => item.split(":")[0] ?? "");
    expect(out.slice().sort()).toEqual(items.slice().sort());
    // The first 20 are one of each of the 20 subscriptions.
    expect(new Set(out.slice(0, 20).map((item) => item.split(":")[0])).size).toBe(20);
  });
});

describe("createKeyedLimiter", () => {
  it("never runs more than perKey tasks of one key, also when a task arrives as a slot is handed to a waiter", async () => {
    const limiter = createKeyedLimiter(2);
    let active = 0;
    let peak = 0;
    const extra: Promise<void>[] = [];
    const task = (arriveAfter: boolean) => (): Promise<void> => {
      active += 1;
      peak = Math.max(peak, active);
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        active -= 1;
      });
      // Reacts to the same promise right after the limiter does: between its release and the waiter's turn.
      if (arriveAfter)
        queueMicrotask(() => {
          void done.then(() => extra.push(limiter.run("sub", task(false))));
        });
      return done;
    };
    const runs = [limiter.run("sub", task(true)), limiter.run("sub", task(false)), limiter.run("sub", task(false))];
    await Promise.all(runs);
    await Promise.all(extra);
    expect(extra).toHaveLength(1);
    expect(peak).toBe(2);
  });

  it("lets other keys run while one key is full", async () => {
    const limiter = createKeyedLimiter(1);
    const order: string[] = [];
    let release: () => void = () => undefined;
    const blocked = limiter.run("a", () => new Promise<void>((resolve) => (release = resolve)));
    await limiter.run("b", () => {
      order.push("b");
      return Promise.resolve();
    });
    release();
    await blocked;
    expect(order).toEqual(["b"]);
  });
});
