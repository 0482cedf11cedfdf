import { expect, it } from "vitest";
import { replayHistory } from "./replayer.js";
import {
  FAULT_POLICY,
  REPLAY_TIMEOUT_MS,
  collectFigures,
  configuration,
  describeReplays,
  publications,
  replayHarness,
} from "./suite.js";

/**
 * The weekly history 2021-2025 replayed against registries that need aggregation: twelve regions
 * of the Americas within a budget of 93 rules, and westeurope behind 90 people's rules. Then the
 * first half of 2024 (five changes of the Americas' tags) once more on the blob ledger in Azurite,
 * the store the Functions app uses, with faults.
 */
const rows = collectFigures("Replay figures: aggregation (file ledger; last row: blob ledger on Azurite)");
const harness = replayHarness();
describeReplays(["aggregated", "crowded"], rows, harness);

it(
  "keeps every invariant with the blob ledger on Azurite, with faults, over the first half of 2024",
  async () => {
    const window = publications.filter((p) => p.label >= "20240101" && p.label < "20240701");
    const { figures } = await replayHistory({
      harness: harness(),
      configuration: configuration("aggregated"),
      label: "aggregated 2024H1 (blob)",
      publications: window,
      ledger: "blob",
      faults: { seed: 7, policy: FAULT_POLICY },
    });
    rows.push(figures);
    expect(figures.violations).toEqual([]);
    expect(figures.weeks).toBe(window.length);
    expect(figures.writes).toBeGreaterThan(1);
    expect(figures.faultsStruck).toBeGreaterThan(0);
  },
  REPLAY_TIMEOUT_MS,
);
