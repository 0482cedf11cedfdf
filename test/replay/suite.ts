import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../support/harness.js";
import { CONFIGURATIONS, type ReplayConfiguration } from "./configurations.js";
import type { FaultPolicy } from "./faults.js";
import { formatFigures } from "./figures.js";
import { loadAcrHistory, rebuildPublications, type Publication } from "./history.js";
import { replayHistory, type ReplayFigures, type ReplayResult } from "./replayer.js";

/**
 * The replay tests of a group of configurations: every configuration is replayed over all 242
 * weeks, first clean, then with seeded faults (its end state compared week by week with the clean
 * replay's). The groups live in separate files so that vitest runs them in parallel.
 */

/** ~15 % of the quiet weeks get a fault; a week that writes gets up to 3 faulty runs (80 % each). */
export const FAULT_POLICY: FaultPolicy = { quietShare: 0.15, writeShare: 0.8, writeAttempts: 3 };
/** A whole replay takes 5-15 s on 2 cores; the margin is for loaded CI machines. */
export const REPLAY_TIMEOUT_MS = 180_000;

export const publications: readonly Publication[] = rebuildPublications(loadAcrHistory());

export function configuration(name: string): ReplayConfiguration {
  const found = CONFIGURATIONS.find((c) => c.name === name);
  if (found === undefined) throw new Error(`No replay configuration '${name}'.`);
  return found;
}

/**
 * The file's harness (identity endpoint, ARM emulator, Download Center), started empty: the
 * replays publish the weekly files themselves. Each replay uses its own registry and ledger.
 */
export function replayHarness(): () => Harness {
  let harness: Harness | undefined;
  beforeAll(async () => {
    harness = await startHarness({ tags: { files: {}, latest: null } });
  });
  afterAll(async () => {
    await harness?.close();
  });
  return () => {
    if (harness === undefined) throw new Error("The replay harness has not started.");
    return harness;
  };
}

/** Figures of the file's replays, printed as one table when the file ends. */
export function collectFigures(title: string): ReplayFigures[] {
  const rows: ReplayFigures[] = [];
  afterAll(() => {
    if (rows.length > 0) console.log(`${title}\n${formatFigures(rows)}`);
  });
  return rows;
}

function sum(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

export function describeReplays(names: readonly string[], rows: ReplayFigures[], harness: () => Harness): void {
  for (const name of names) {
    const config = configuration(name);
    // One seed per configuration, fixed: a failure reproduces with the same faults in the same weeks.
    const seed = 1 + 1000 * CONFIGURATIONS.indexOf(config);
    describe(`replaying every weekly publication 2021-2025 on ${config.description}`, () => {
      let clean: ReplayResult | undefined;

      it(
        "keeps every invariant after each of the 242 weeks",
        async () => {
          clean = await replayHistory({ harness: harness(), configuration: config, publications, ledger: "file" });
          const { figures } = clean;
          rows.push(figures);
          expect(figures.violations).toEqual([]);
          expect(figures.weeks).toBe(publications.length);
          expect(figures.guardTrips["tag-missing"] ?? 0).toBe(config.expected.tagMissingWeeks);
          expect(figures.convergedWeeks).toBe(publications.length - config.expected.tagMissingWeeks);
          expect(figures.aggregatedWeeks).toBe(config.expected.aggregatedWeeks);
          expect(figures.writes).toBeGreaterThan(0);
          expect(figures.auditEntries).toBe(figures.writes);
        },
        REPLAY_TIMEOUT_MS,
      );

      it(
        `keeps them with seeded faults (seed ${seed}) in ARM and source calls, and every faulted week converges on the next clean run`,
        async () => {
          const faulty = await replayHistory({
            harness: harness(),
            configuration: config,
            publications,
            ledger: "file",
            faults: { seed, policy: FAULT_POLICY },
            reference: clean?.states,
          });
          const { figures } = faulty;
          rows.push(figures);
          expect(figures.violations).toEqual([]);
          expect(clean, "the clean replay must have run first, as the reference").toBeDefined();
          expect(sum(figures.faultsInjected)).toBeGreaterThan(20);
          expect(figures.faultsStruck).toBeGreaterThan(20);
          expect(sum(figures.failedRuns)).toBeGreaterThan(0);
          expect(figures.convergedWeeks).toBe(publications.length - config.expected.tagMissingWeeks);
        },
        REPLAY_TIMEOUT_MS,
      );
    });
  }
}
