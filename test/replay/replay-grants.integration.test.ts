import { expect, it } from "vitest";
import { replayHistory } from "./replayer.js";
import {
  FAULT_POLICY,
  REPLAY_TIMEOUT_MS,
  collectFigures,
  configuration,
  publications,
  replayHarness,
} from "./suite.js";

/**
 * The weekly history 2021-2025 replayed with a seeded stream of temporary grants laid over it, on
 * the most crowded registry (westeurope behind 90 people's rules: 8 rules for the service, of
 * which the cover needs up to 6, so a third grant at once finds no room), with seeded ARM and
 * source faults too. ARM's clock follows the history; every week's invariants hold, and no grant
 * is on the registry or in the ledger after the first successful run at or past its expiry.
 */
const rows = collectFigures("Replay figures: temporary grants (file ledger, seeded faults)");
const harness = replayHarness();

it(
  "keeps every invariant with random grants and faults over the 242 weeks, and no grant outlives its ttl by more than one run",
  async () => {
    const { figures } = await replayHistory({
      harness: harness(),
      configuration: configuration("crowded"),
      label: "crowded + grants",
      publications,
      ledger: "file",
      faults: { seed: 14, policy: FAULT_POLICY },
      grants: { seed: 1414, grantShare: 0.35, revokeShare: 0.1 },
    });
    rows.push(figures);
    const grants = figures.grants;
    console.log(`Grants in the replay: ${JSON.stringify(grants)}`);
    expect(figures.violations).toEqual([]);
    expect(figures.weeks).toBe(publications.length);
    expect(figures.convergedWeeks).toBe(publications.length);
    expect(grants?.added).toBeGreaterThan(50);
    expect(grants?.expired).toBeGreaterThan(40);
    expect(grants?.revoked).toBeGreaterThan(0);
    expect(grants?.refused).toBeGreaterThan(0);
    expect(grants?.maxActive).toBeGreaterThanOrEqual(2);
    expect(figures.faultsStruck).toBeGreaterThan(20);
  },
  REPLAY_TIMEOUT_MS,
);
