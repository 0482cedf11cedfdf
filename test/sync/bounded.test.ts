import { describe, expect, it } from "vitest";
import { forEachBounded } from "../../src/sync/bounded.js";

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
